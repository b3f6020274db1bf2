"""Appeals are a conversation between the affected user and staff that ends upheld or
overturned; overturning undoes the decision's effects."""

from __future__ import annotations

import pytest

from accounts.models import Notification
from generation.models import Clip
from moderation import services
from moderation.models import Role, Strike
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.moderation.helpers import make_clip, staff
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db


def _removed_clip_case(owner):
    clip = make_clip(owner)
    case = services.case_open(
        queue="reports",
        subject_type="clip",
        subject_id=clip.job.public_id,
        category="sexual",
        severity=3,
        summary="r",
    )
    services.case_decide(
        case=case,
        actor=staff(),
        decision="remove",
        reason_code="sexual_content",
        options={"strike": True},
    )
    return clip, case


def test_an_overturned_appeal_restores_the_clip_and_revokes_the_strike():
    owner = UserFactory()
    clip, case = _removed_clip_case(owner)
    api = client_for(owner)
    opened = api.post(
        "/api/v1/appeals", {"case": case.public_id, "message": "It is a statue."}, format="json"
    )
    assert opened.status_code == 201, opened.content
    appeal_id = opened.json()["id"]
    senior = client_for(staff(Role.SENIOR))
    assert [a["id"] for a in senior.get("/api/v1/moderation/appeals").json()["data"]] == [appeal_id]
    asked = senior.post(
        f"/api/v1/moderation/appeals/{appeal_id}/messages",
        {"body": "Which statue?"},
        format="json",
    )
    assert asked.status_code == 201
    assert Notification.objects.filter(user=owner, kind="appeal.message").count() == 1
    api.post(f"/api/v1/appeals/{appeal_id}/messages", {"body": "David, Florence."}, format="json")
    resolved = senior.post(
        f"/api/v1/moderation/appeals/{appeal_id}/resolve",
        {"outcome": "overturned", "reason": "Classical art."},
        format="json",
    )
    assert resolved.status_code == 200, resolved.content
    thread = api.get(f"/api/v1/appeals/{appeal_id}").json()
    assert thread["status"] == "overturned"
    assert [(m["author"], m["body"]) for m in thread["messages"]] == [
        (f"@{owner.handle}", "It is a statue."),
        ("Trust & Safety", "Which statue?"),
        (f"@{owner.handle}", "David, Florence."),
        ("Trust & Safety", "Classical art."),
    ]
    clip.refresh_from_db()
    assert clip.removed_at is None
    assert Strike.objects.get(user=owner).revoked_at is not None
    assert Notification.objects.get(user=owner, kind="appeal.resolved").data["outcome"] == (
        "overturned"
    )
    closed = api.post(f"/api/v1/appeals/{appeal_id}/messages", {"body": "thanks"}, format="json")
    assert_error(closed, 409, code="appeal_closed")


def test_an_upheld_appeal_changes_nothing():
    owner = UserFactory()
    clip, case = _removed_clip_case(owner)
    appeal = services.appeal_open(user=owner, case=case, message="please")
    services.appeal_resolve(
        appeal=appeal, actor=staff(Role.SENIOR), outcome="upheld", reason="Clear violation."
    )
    assert Clip.objects.get(pk=clip.pk).removed_at is not None
    assert Strike.objects.get(user=owner).revoked_at is None


def test_only_the_affected_user_may_appeal_and_only_once_at_a_time():
    owner = UserFactory()
    _, case = _removed_clip_case(owner)
    stranger = client_for(UserFactory())
    response = stranger.post(
        "/api/v1/appeals", {"case": case.public_id, "message": "unfair"}, format="json"
    )
    assert_error(response, 404, code="case_not_found", param="case")
    api = client_for(owner)
    assert (
        api.post(
            "/api/v1/appeals", {"case": case.public_id, "message": "one"}, format="json"
        ).status_code
        == 201
    )
    twice = api.post("/api/v1/appeals", {"case": case.public_id, "message": "two"}, format="json")
    assert_error(twice, 409, code="appeal_open")
    missing = api.post("/api/v1/appeals", {"case": "case_zzz", "message": "x"}, format="json")
    assert_error(missing, 404, code="case_not_found", param="case")
    empty = api.post("/api/v1/appeals", {"case": case.public_id}, format="json")
    assert empty.status_code == 400


def test_a_dismissal_is_not_appealable():
    owner = UserFactory()
    clip = make_clip(owner)
    case = services.case_open(
        queue="reports",
        subject_type="clip",
        subject_id=clip.job.public_id,
        category="spam",
        severity=1,
        summary="s",
    )
    services.case_decide(case=case, actor=staff(), decision="approve", reason_code="no_violation")
    response = client_for(owner).post(
        "/api/v1/appeals", {"case": case.public_id, "message": "?"}, format="json"
    )
    assert_error(response, 409, code="not_appealable")


def test_moderators_below_senior_cannot_close_appeals():
    owner = UserFactory()
    _, case = _removed_clip_case(owner)
    appeal = services.appeal_open(user=owner, case=case, message="m")
    moderator = client_for(staff())
    response = moderator.post(
        f"/api/v1/moderation/appeals/{appeal.public_id}/resolve",
        {"outcome": "overturned", "reason": "x"},
        format="json",
    )
    assert_error(response, 403, code="role_required")
    appeal.refresh_from_db()
    assert appeal.status == "open"
