"""Moderation acting on comments: removal (with the author told), strikes, restoring, appeals
that undo a removal, the audit trail, and the staff console's case page for a comment."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Notification
from feed import services as feed_services
from feed.models import Comment
from generation.models import Clip
from moderation import services
from moderation.models import AuditEntry, Case, Report, Role, Strike
from tests.factories import UserFactory
from tests.feed.helpers import publish
from tests.fixtures import client_for
from tests.moderation.helpers import make_clip, staff
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db

CASES = "/api/v1/moderation/cases"


@pytest.fixture
def reported():
    """A comment on someone's post, reported as spam: its post, author, comment, case and
    reporter."""
    owner, author, reporter = UserFactory(), UserFactory(), UserFactory()
    post = publish(owner)
    comment = feed_services.comment_create(
        post=post, author=author, body="buy followers at cheapfollows dot com"
    )
    feed_services.comment_create(post=post, author=reporter, body="great clip")
    response = client_for(reporter).post(
        "/api/v1/reports",
        {"subject_type": "comment", "subject_id": comment.public_id, "reason": "spam"},
        format="json",
    )
    assert response.status_code == 201, response.content
    return {
        "post": post,
        "author": author,
        "comment": comment,
        "case": Case.objects.get(subject_id=comment.public_id),
        "reporter": reporter,
    }


def _decide(user, case, **body):
    payload = {"reason_code": "spam", **body}
    return client_for(user).post(f"{CASES}/{case.public_id}/decide", payload, format="json")


def test_removing_a_comment_hides_it_tells_the_author_and_is_audited(reported):
    moderator = staff()
    case, comment, author = reported["case"], reported["comment"], reported["author"]
    detail = client_for(moderator).get(f"{CASES}/{case.public_id}").json()
    assert detail["subject"]["details"]["text"] == "buy followers at cheapfollows dot com"
    assert detail["subject"]["owner"] == author.handle

    response = _decide(moderator, case, decision="remove", strike=True, reason="link farming")
    assert response.status_code == 200, response.content
    comment.refresh_from_db()
    assert comment.removed_at is not None
    assert comment.removal_reason == "It is spam. link farming"
    post = reported["post"]
    post.refresh_from_db()
    assert post.comments_count == 1

    entry = AuditEntry.objects.get(action="decision_remove")
    assert (entry.subject_type, entry.subject_id) == ("comment", comment.public_id)
    assert entry.actor == f"staff:{moderator.pk}"
    effects = entry.detail["effects"]
    assert effects[0] == {
        "type": "subject_removed",
        "subject_type": "comment",
        "subject_id": comment.public_id,
    }
    assert effects[1]["type"] == "strike"
    assert Strike.objects.filter(user=author, case=case).count() == 1

    note = Notification.objects.get(user=author, kind="moderation.action")
    assert note.data | {"reason": None} == {
        "case": case.public_id,
        "decision": "remove",
        "reason": None,
        "subject_type": "comment",
        "subject_id": comment.public_id,
        "appealable": True,
    }
    assert note.data["reason"] == "It is spam. link farming"
    assert Report.objects.get().status == "actioned"
    assert Notification.objects.filter(user=reported["reporter"], kind="report.resolved").exists()
    # The author still sees it, marked removed; others do not.
    url = f"/api/v1/posts/{post.public_id}/comments"
    mine = client_for(author).get(url).json()["data"]
    assert [(c["body"], c["removed"]) for c in mine] == [
        ("buy followers at cheapfollows dot com", True),
        ("great clip", False),
    ]
    theirs = client_for(reported["reporter"]).get(url).json()["data"]
    assert [c["body"] for c in theirs] == ["great clip"]


@pytest.mark.parametrize("decision", ["takedown_temporary", "age_restrict", "label"])
def test_clip_only_decisions_do_not_apply_to_comments(reported, decision):
    response = _decide(staff(), reported["case"], decision=decision, label="x", days=2)
    assert_error(response, 400, code="decision_not_applicable", param="decision")
    reported["comment"].refresh_from_db()
    assert reported["comment"].removed_at is None
    assert reported["case"].reports.get().status == "open"
    assert not AuditEntry.objects.filter(action__startswith="decision_").exists()


def test_striking_the_author_leaves_the_comment(reported):
    response = _decide(staff(), reported["case"], decision="strike")
    assert response.status_code == 200
    reported["comment"].refresh_from_db()
    assert reported["comment"].removed_at is None
    assert Strike.objects.filter(user=reported["author"]).count() == 1


def test_restore_needs_a_senior_moderator_and_a_reason(reported):
    case, comment = reported["case"], reported["comment"]
    _decide(staff(), case, decision="remove", strike=True)
    url = f"{CASES}/{case.public_id}/restore"
    before = AuditEntry.objects.count()
    assert_error(
        client_for(staff()).post(url, {"reason": "mistake"}, format="json"),
        403,
        code="role_required",
    )
    senior = staff(Role.SENIOR)
    assert_error(
        client_for(senior).post(url, {}, format="json"), 400, code="required", param="reason"
    )
    assert_error(
        client_for(senior).post(url, {"reason": "   "}, format="json"),
        400,
        code="blank",
        param="reason",
    )
    assert AuditEntry.objects.count() == before
    comment.refresh_from_db()
    assert comment.removed_at is not None

    response = client_for(senior).post(
        url, {"reason": "a real shop the poster owns"}, format="json"
    )
    assert response.status_code == 200, response.content
    comment.refresh_from_db()
    assert comment.removed_at is None and comment.removal_reason == ""
    post = reported["post"]
    post.refresh_from_db()
    assert post.comments_count == 2
    entry = AuditEntry.objects.get(action="restored")
    assert entry.actor == f"staff:{senior.pk}" and entry.reason == "a real shop the poster owns"
    assert entry.detail["effects"][0]["changed"] is True
    restored = Notification.objects.get(user=reported["author"], kind="moderation.restored")
    assert restored.data["subject_id"] == comment.public_id
    # The strike stays (an appeal is what undoes it); a second restore has nothing to do.
    assert Strike.objects.get(user=reported["author"]).revoked_at is None
    again = client_for(senior).post(url, {"reason": "again"}, format="json")
    assert_error(again, 409, code="nothing_to_restore")


def test_an_open_case_or_one_that_removed_nothing_has_nothing_to_restore(reported):
    senior = client_for(staff(Role.SENIOR))
    url = f"{CASES}/{reported['case'].public_id}/restore"
    assert_error(senior.post(url, {"reason": "r"}, format="json"), 409, code="nothing_to_restore")
    _decide(staff(), reported["case"], decision="approve", reason_code="no_violation")
    assert_error(senior.post(url, {"reason": "r"}, format="json"), 409, code="nothing_to_restore")
    assert_error(
        senior.post(f"{CASES}/case_nope/restore", {"reason": "r"}, format="json"),
        404,
        code="case_not_found",
        param="case_id",
    )


def test_an_overturned_appeal_restores_the_comment_and_revokes_the_strike(reported):
    case, comment, author = reported["case"], reported["comment"], reported["author"]
    _decide(staff(), case, decision="remove", strike=True)
    appeal = services.appeal_open(user=author, case=case, message="It is my own shop.")
    services.appeal_resolve(
        appeal=appeal,
        actor=staff(Role.SENIOR),
        outcome="overturned",
        reason="Allowed self-promotion.",
    )
    comment.refresh_from_db()
    assert comment.removed_at is None
    assert Strike.objects.get(user=author).revoked_at is not None
    post = reported["post"]
    post.refresh_from_db()
    assert post.comments_count == 2


def test_a_restore_before_the_appeal_is_not_undone_twice(reported):
    case, comment, author = reported["case"], reported["comment"], reported["author"]
    _decide(staff(), case, decision="remove")
    services.case_restore(case=case, actor=staff(Role.SENIOR), reason="mistake")
    # Removed again by a later case meanwhile; overturning the first decision leaves that.
    feed_services.comment_remove(comment=comment, actor="staff:x", reason="later case")
    appeal = services.appeal_open(user=author, case=case, message="please")
    services.appeal_resolve(
        appeal=appeal, actor=staff(Role.SENIOR), outcome="overturned", reason="ok"
    )
    comment.refresh_from_db()
    assert comment.removed_at is not None


def test_restoring_a_removed_clip_from_its_case():
    clip = make_clip(UserFactory())
    case = services.case_open(
        queue="reports",
        subject_type="clip",
        subject_id=clip.job.public_id,
        category="sexual",
        severity=3,
        summary="r",
    )
    services.case_decide(case=case, actor=staff(), decision="remove", reason_code="sexual_content")
    assert Clip.objects.get(pk=clip.pk).removed_at is not None
    services.case_restore(case=case, actor=staff(Role.SENIOR), reason="a painting")
    assert Clip.objects.get(pk=clip.pk).removed_at is None
    assert AuditEntry.objects.filter(action="restored", subject_id=clip.job.public_id).exists()


def _console(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_console_shows_the_comment_and_acts_on_it(reported):
    case, comment = reported["case"], reported["comment"]
    moderator = _console(staff())
    page = moderator.get(f"/staff/cases/{case.public_id}").content.decode()
    assert 'id="comment-text">buy followers at cheapfollows dot com</blockquote>' in page
    assert f"@{reported['author'].handle}" in page
    assert reported["post"].public_id in page
    # Only the decisions that apply to a comment are offered.
    for offered in ('value="remove"', 'value="strike"', 'value="approve"'):
        assert offered in page
    for clip_only in ('value="age_restrict"', 'value="label"', 'value="takedown_temporary"'):
        assert clip_only not in page
    assert 'id="comment-screening"' in page

    done = moderator.post(
        f"/staff/cases/{case.public_id}/act",
        {"action": "decide", "decision": "remove", "reason_code": "spam", "strike": "on"},
        follow=True,
    ).content.decode()
    assert "Decision recorded: remove." in done
    assert 'id="comment-removed"' in done
    comment.refresh_from_db()
    assert comment.removed_at is not None
    # A moderator is told a senior can restore; the form is for seniors, and the service
    # refuses a moderator who posts it anyway.
    assert 'id="restore-form"' not in done
    refused = moderator.post(
        f"/staff/cases/{case.public_id}/act",
        {"action": "restore", "reason": "mistake"},
        follow=True,
    ).content.decode()
    assert "senior moderator" in refused
    comment.refresh_from_db()
    assert comment.removed_at is not None

    senior = _console(staff(Role.SENIOR))
    page = senior.get(f"/staff/cases/{case.public_id}").content.decode()
    assert 'id="restore-form"' in page
    restored = senior.post(
        f"/staff/cases/{case.public_id}/act",
        {"action": "restore", "reason": "context was friendly"},
        follow=True,
    ).content.decode()
    assert "Restored." in restored and 'id="restore-form"' not in restored
    comment.refresh_from_db()
    assert comment.removed_at is None
    assert Comment.objects.get(pk=comment.pk).removal_reason == ""
