"""Console pages rendered with real data through Django's test client (the browser test
covers the main flow): appeal threads, verification queues, escalation and errors."""

from __future__ import annotations

import pytest
from django.test import Client

from generation.models import Clip
from moderation import services
from moderation.models import Appeal, Case, CaseNote, Role
from tests.factories import UserFactory
from tests.moderation.helpers import make_clip, staff

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _removed(owner):
    clip = make_clip(owner)
    case = services.case_open(
        queue="reports",
        subject_type="clip",
        subject_id=clip.job.public_id,
        category="sexual",
        severity=3,
        summary="r",
    )
    services.case_decide(case=case, actor=staff(), decision="remove", reason_code="sexual_content")
    return clip, case


def test_an_appeal_is_answered_and_overturned_from_the_console():
    owner = UserFactory()
    clip, case = _removed(owner)
    appeal = services.appeal_open(user=owner, case=case, message="It was a painting.")
    senior = _client(staff(Role.SENIOR))
    listing = senior.get("/staff/appeals")
    assert appeal.public_id in listing.content.decode()
    page = senior.get(f"/staff/appeals/{appeal.public_id}")
    assert "It was a painting." in page.content.decode()
    senior.post(f"/staff/appeals/{appeal.public_id}/act", {"action": "reply", "body": "Which?"})
    done = senior.post(
        f"/staff/appeals/{appeal.public_id}/act",
        {"action": "resolve", "outcome": "overturned", "reason": "Art."},
        follow=True,
    )
    assert "Appeal overturned." in done.content.decode()
    appeal.refresh_from_db()
    assert appeal.status == "overturned"
    assert list(appeal.messages.values_list("body", flat=True)) == [
        "It was a painting.",
        "Which?",
        "Art.",
    ]
    assert Clip.objects.get(pk=clip.pk).removed_at is None


def test_a_bad_form_shows_the_error_and_changes_nothing():
    clip = make_clip(UserFactory())
    case = services.case_open(
        queue="reports",
        subject_type="clip",
        subject_id=clip.job.public_id,
        category="hate",
        severity=3,
        summary="r",
    )
    moderator = _client(staff())
    page = moderator.post(
        f"/staff/cases/{case.public_id}/act",
        {"action": "decide", "decision": "label", "reason_code": "hate_speech", "label": ""},
        follow=True,
    )
    assert "label is required." in page.content.decode()
    case.refresh_from_db()
    assert case.is_open and Clip.objects.get(pk=clip.pk).labels == []


def test_verification_queues_offer_only_approve_and_reject():
    from moderation import hooks

    hooks.register_case_resolver("cameo_verification", lambda **kw: None)
    try:
        case = services.case_open(
            queue="cameo_verification",
            subject_type="cameo",
            subject_id="cameo_x",
            category="other",
            severity=2,
            summary="verify",
        )
        html = _client(staff()).get(f"/staff/cases/{case.public_id}").content.decode()
        options = [v for v in ("approve", "reject", "remove", "suspend") if f'value="{v}"' in html]
        assert options == ["approve", "reject"]
    finally:
        hooks._resolvers.pop("cameo_verification", None)


def test_escalating_from_the_console_hides_the_case_from_moderators():
    clip = make_clip(UserFactory())
    case = services.case_open(
        queue="reports",
        subject_type="clip",
        subject_id=clip.job.public_id,
        category="violence",
        severity=4,
        summary="r",
    )
    moderator = _client(staff())
    moderator.post(f"/staff/cases/{case.public_id}/act", {"action": "escalate", "reason": "legal"})
    assert Case.objects.get(pk=case.pk).escalated_at is not None
    assert moderator.get(f"/staff/cases/{case.public_id}").status_code == 404
    senior = _client(staff(Role.SENIOR))
    assert senior.get("/staff/?queue=escalations").content.decode().count(case.public_id) == 1


def test_notes_post_in_place_and_render_as_a_fragment():
    case = services.case_open(
        queue="reports",
        subject_type="user",
        subject_id=str(UserFactory().pk),
        category="spam",
        severity=1,
        summary="r",
    )
    moderator = _client(staff())
    fragment = moderator.post(
        f"/staff/cases/{case.public_id}/notes", {"body": "bot"}, HTTP_X_REQUESTED_WITH="fetch"
    )
    assert fragment.status_code == 200 and '<li class="note">' in fragment.content.decode()
    empty = moderator.post(
        f"/staff/cases/{case.public_id}/notes", {"body": ""}, HTTP_X_REQUESTED_WITH="fetch"
    )
    assert empty.status_code == 400
    assert CaseNote.objects.count() == 1
    assert Appeal.objects.count() == 0
