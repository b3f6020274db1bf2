"""Actions and their records: takedowns (permanent, temporary), age restriction, labels,
strikes with expiry and thresholds, suspensions, and the append-only audit log."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import DatabaseError, transaction
from django.test import override_settings
from django.utils import timezone

from accounts.models import Notification
from core.errors import Forbidden, InvalidRequest
from generation.selectors import clip_visible_to
from moderation import services
from moderation.models import AuditEntry, Case, Role, Strike, Suspension, Takedown
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.moderation.helpers import make_clip, staff
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db


def _case_on(clip, category="sexual") -> Case:
    return services.case_open(
        queue="reports",
        subject_type="clip",
        subject_id=clip.job.public_id,
        category=category,
        severity=3,
        summary="reported",
    )


def test_age_restrict_and_label_change_what_viewers_see():
    moderator = staff()
    clip = make_clip(UserFactory(), published_at=timezone.now())
    teen_viewer = UserFactory(birth_date=dt.date.today().replace(year=dt.date.today().year - 15))
    services.case_decide(
        case=_case_on(clip), actor=moderator, decision="age_restrict", reason_code="mature_content"
    )
    clip.refresh_from_db()
    assert clip.age_restricted and not clip_visible_to(clip=clip, user=teen_viewer)
    assert clip_visible_to(clip=clip, user=UserFactory())
    services.case_decide(
        case=_case_on(clip, "other"),
        actor=moderator,
        decision="label",
        reason_code="mature_content",
        options={"label": "Contains flashing lights"},
    )
    clip.refresh_from_db()
    assert clip.labels == ["Contains flashing lights"]
    actions = list(clip.job.events.values_list("detail__action", flat=True))
    assert "clip_age_restricted" in actions and "clip_labelled" in actions


def test_a_temporary_takedown_comes_back_when_its_time_is_up():
    moderator = staff()
    clip = make_clip(UserFactory(), published_at=timezone.now())
    services.case_decide(
        case=_case_on(clip),
        actor=moderator,
        decision="takedown_temporary",
        reason_code="sexual_content",
        options={"days": 3},
    )
    clip.refresh_from_db()
    assert clip.removed_at is not None
    assert services.expire_due()["takedowns_restored"] == 0
    Takedown.objects.update(until=timezone.now() - dt.timedelta(seconds=1))
    assert services.expire_due()["takedowns_restored"] == 1
    clip.refresh_from_db()
    assert clip.removed_at is None
    assert AuditEntry.objects.filter(action="takedown_expired").count() == 1


def test_takedown_days_are_validated_and_nothing_changes_on_error():
    clip = make_clip(UserFactory())
    case = _case_on(clip)
    with pytest.raises(InvalidRequest):
        services.case_decide(
            case=case,
            actor=staff(),
            decision="takedown_temporary",
            reason_code="spam",
            options={"days": 0},
        )
    clip.refresh_from_db()
    case.refresh_from_db()
    assert clip.removed_at is None and case.is_open


@override_settings(MODERATION_SUSPEND_AT=2, MODERATION_BAN_AT=3, MODERATION_SUSPEND_DAYS=7)
def test_strikes_accumulate_suspend_at_the_threshold_and_expire():
    owner = UserFactory()
    api = client_for(owner)
    strike, suspension = services.strike_issue(
        user=owner, category="spam", reason="r1", actor="staff:1"
    )
    assert suspension is None
    assert Notification.objects.filter(user=owner, kind="moderation.strike").count() == 1
    # An expired strike does not count.
    Strike.objects.filter(pk=strike.pk).update(expires_at=timezone.now() - dt.timedelta(days=1))
    _, suspension = services.strike_issue(user=owner, category="spam", reason="r2", actor="s")
    assert suspension is None
    _, suspension = services.strike_issue(user=owner, category="spam", reason="r3", actor="s")
    assert suspension is not None and suspension.ends_at is not None
    owner.refresh_from_db()
    assert not owner.is_active
    assert_error(api.get("/api/v1/me"), 401, code="account_disabled")
    Suspension.objects.filter(pk=suspension.pk).update(ends_at=timezone.now())
    assert services.expire_due()["suspensions_lifted"] == 1
    owner.refresh_from_db()
    assert owner.is_active and api.get("/api/v1/me").status_code == 200


@override_settings(MODERATION_SUSPEND_AT=2, MODERATION_BAN_AT=3)
def test_the_ban_threshold_suspends_for_good():
    owner = UserFactory()
    for n in range(3):
        _, suspension = services.strike_issue(user=owner, category="hate", reason=f"{n}", actor="s")
    assert suspension.ends_at is None
    assert services.expire_due()["suspensions_lifted"] == 0


def test_remove_with_strike_and_suspend_need_the_right_roles():
    moderator, senior = staff(), staff(Role.SENIOR)
    owner = UserFactory()
    clip = make_clip(owner)
    with pytest.raises(Forbidden):
        services.case_decide(
            case=_case_on(clip), actor=moderator, decision="suspend", reason_code="harassment"
        )
    services.case_decide(
        case=_case_on(clip),
        actor=moderator,
        decision="remove",
        reason_code="sexual_content",
        options={"strike": True},
    )
    assert Strike.objects.get(user=owner).case is not None
    moderation_note = Notification.objects.get(user=owner, kind="moderation.action")
    assert moderation_note.data["decision"] == "remove" and moderation_note.data["appealable"]
    other = make_clip(owner)
    services.case_decide(
        case=_case_on(other),
        actor=senior,
        decision="suspend",
        reason_code="harassment",
        options={"days": 2},
    )
    owner.refresh_from_db()
    assert not owner.is_active


def test_the_audit_log_is_append_only_in_the_database():
    moderator = staff()
    clip = make_clip(UserFactory())
    services.case_decide(
        case=_case_on(clip), actor=moderator, decision="remove", reason_code="sexual_content"
    )
    entry = AuditEntry.objects.get(action="decision_remove")
    assert entry.actor == f"staff:{moderator.pk}"
    assert entry.reason == "It shows sexual content, which is not allowed here."
    assert entry.detail["effects"][0]["type"] == "removed"
    for attempt in (
        lambda: AuditEntry.objects.filter(pk=entry.pk).update(reason="nothing to see"),
        lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    entry.refresh_from_db()
    assert entry.reason.startswith("It shows sexual content")


def test_a_decision_needs_a_known_reason_template():
    clip = make_clip(UserFactory())
    api = client_for(staff())
    case = _case_on(clip)
    response = api.post(
        f"/api/v1/moderation/cases/{case.public_id}/decide",
        {"decision": "remove", "reason_code": "because"},
        format="json",
    )
    assert_error(response, 400, code="invalid_choice", param="reason_code")
    case.refresh_from_db()
    clip.refresh_from_db()
    assert case.is_open and clip.removed_at is None
    again = api.post(
        f"/api/v1/moderation/cases/{case.public_id}/decide",
        {"decision": "approve", "reason_code": "no_violation"},
        format="json",
    )
    assert again.status_code == 200
    twice = api.post(
        f"/api/v1/moderation/cases/{case.public_id}/decide",
        {"decision": "approve", "reason_code": "no_violation"},
        format="json",
    )
    assert_error(twice, 409, code="case_resolved")


def test_approving_a_held_clip_releases_it():
    clip = make_clip(UserFactory(), held_at=timezone.now(), hold_reason="screening: x")
    services.case_decide(
        case=_case_on(clip), actor=staff(), decision="approve", reason_code="no_violation"
    )
    clip.refresh_from_db()
    assert clip.held_at is None and clip.hold_reason == ""


def test_staff_notes_are_for_staff():
    case = _case_on(make_clip(UserFactory()))
    api = client_for(staff())
    created = api.post(
        f"/api/v1/moderation/cases/{case.public_id}/notes", {"body": "seen before"}, format="json"
    )
    assert created.status_code == 201
    detail = api.get(f"/api/v1/moderation/cases/{case.public_id}").json()
    assert [n["body"] for n in detail["notes"]] == ["seen before"]
    empty = api.post(
        f"/api/v1/moderation/cases/{case.public_id}/notes", {"body": " "}, format="json"
    )
    assert empty.status_code == 400
