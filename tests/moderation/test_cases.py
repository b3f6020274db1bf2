"""Cases: one open case per queue and subject, the priority order, assignment, escalation,
the resolver hook other apps register, and the remix review receiver."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Follow
from core.errors import Conflict, Forbidden, InvalidRequest
from moderation import hooks, selectors, services
from moderation.models import AuditEntry, Case, Role
from tests.factories import UserFactory
from tests.moderation.helpers import make_clip, staff

pytestmark = pytest.mark.django_db


def _open(subject_id: str, severity: int = 3, queue: str = "reports", **kw) -> Case:
    return services.case_open(
        queue=queue,
        subject_type=kw.pop("subject_type", "comment"),
        subject_id=subject_id,
        category=kw.pop("category", "other"),
        severity=severity,
        summary=f"case {subject_id}",
        **kw,
    )


def test_a_second_report_joins_the_open_case_and_raises_its_severity():
    reporter_a, reporter_b = UserFactory(), UserFactory()
    first = _open("c1", severity=2, reporter=reporter_a)
    second = _open("c1", severity=5, reporter=reporter_b, category="minors")
    assert second.pk == first.pk
    second.refresh_from_db()
    assert (second.severity, second.category, second.report_count) == (5, "minors", 2)
    assert second.sla_due_at <= timezone.now() + dt.timedelta(hours=1)
    # Same subject, another queue: its own case.
    assert _open("c1", queue="remix_review").pk != first.pk
    assert Case.objects.count() == 2


def test_a_resolved_case_does_not_absorb_new_reports():
    moderator = staff()
    case = _open("c2")
    services.case_decide(case=case, actor=moderator, decision="approve", reason_code="no_violation")
    again = _open("c2")
    assert again.pk != case.pk and again.is_open


def test_severity_out_of_range_is_refused():
    with pytest.raises(InvalidRequest):
        _open("c3", severity=9)
    assert not Case.objects.exists()


def test_queue_order_is_severity_then_reach_then_reporter_trust_then_age():
    moderator = staff()
    creator = UserFactory()
    for _ in range(12):
        Follow.objects.create(follower=UserFactory(), followee=creator)
    popular = make_clip(creator, published_at=timezone.now())
    obscure = make_clip(UserFactory(), published_at=timezone.now())
    old = _open("old", severity=3)
    Case.objects.filter(pk=old.pk).update(opened_at=timezone.now() - dt.timedelta(hours=5))
    _open("new", severity=3)
    trusted = _open("trusted", severity=3)
    Case.objects.filter(pk=trusted.pk).update(reporter_trust=0.9)
    _open(popular.job.public_id, severity=3, subject_type="clip")
    _open(obscure.job.public_id, severity=3, subject_type="clip")
    _open("worst", severity=5)
    order = [c.subject_id for c in selectors.case_queue(user=moderator)]
    assert order == [
        "worst",
        popular.job.public_id,  # reach 13 (12 followers): band 1
        "trusted",
        "old",
        "new",
        obscure.job.public_id,  # band 0 like the others, opened last
    ]


def test_filters_by_queue_category_assignment_and_overdue():
    moderator = staff()
    a = _open("a", category="spam", severity=1)
    _open("b", category="hate", queue="remix_review")
    Case.objects.filter(pk=a.pk).update(sla_due_at=timezone.now() - dt.timedelta(minutes=1))
    ids = lambda **kw: [c.subject_id for c in selectors.case_queue(user=moderator, **kw)]  # noqa: E731
    assert ids(queue="remix_review") == ["b"]
    assert ids(category="spam") == ["a"]
    assert ids(overdue=True) == ["a"]
    services.case_assign(case=a, assignee=moderator, actor=moderator)
    assert ids(assigned="me") == ["a"] and ids(assigned="none") == ["b"]
    with pytest.raises(InvalidRequest):
        selectors.case_queue(user=moderator, assigned="bob")


def test_moderators_take_cases_but_only_seniors_hand_them_to_others():
    moderator, other, senior = staff(), staff(), staff(Role.SENIOR)
    case = _open("x")
    with pytest.raises(Forbidden):
        services.case_assign(case=case, assignee=other, actor=moderator)
    services.case_assign(case=case, assignee=other, actor=senior)
    case.refresh_from_db()
    assert case.assigned_to == other
    with pytest.raises(InvalidRequest):
        services.case_assign(case=case, assignee=UserFactory(), actor=senior)
    assert AuditEntry.objects.filter(action="case_assigned", case=case).count() == 1


def test_take_next_assigns_the_top_unassigned_case_and_then_runs_dry():
    moderator = staff()
    _open("low", severity=1)
    _open("high", severity=4)
    assert services.case_take_next(user=moderator).subject_id == "high"
    assert services.case_take_next(user=moderator).subject_id == "low"
    assert services.case_take_next(user=moderator) is None


def test_escalated_cases_are_for_senior_moderators_only():
    moderator, senior = staff(), staff(Role.SENIOR)
    case = _open("e")
    services.case_assign(case=case, assignee=moderator, actor=moderator)
    services.case_escalate(case=case, actor=moderator, reason="needs legal")
    case.refresh_from_db()
    assert case.escalated_at is not None and case.assigned_to is None
    assert list(selectors.case_queue(user=moderator)) == []
    assert [c.pk for c in selectors.case_queue(user=senior, queue="escalations")] == [case.pk]
    with pytest.raises(Forbidden):
        services.case_decide(case=case, actor=moderator, decision="approve", reason_code="spam")
    with pytest.raises(Conflict):
        services.case_escalate(case=case, actor=senior, reason="again")
    services.case_decide(case=case, actor=senior, decision="approve", reason_code="no_violation")


def test_a_registered_resolver_decides_cases_in_its_queue():
    calls = []

    def resolver(*, case, decision, actor, note):
        calls.append((case.subject_id, decision, actor, note))

    hooks.register_case_resolver("cameo_verification", resolver)
    hooks.register_case_resolver("cameo_verification", resolver)
    try:
        moderator = staff()
        case = _open("cameo_1", queue="cameo_verification", subject_type="cameo")
        with pytest.raises(InvalidRequest):
            services.case_decide(case=case, actor=moderator, decision="remove", reason_code="spam")
        services.case_decide(
            case=case,
            actor=moderator,
            decision="reject",
            reason_code="verification_failed",
            reason="blurry",
        )
        assert calls == [
            (
                "cameo_1",
                "reject",
                f"staff:{moderator.pk}",
                "The verification could not be approved. blurry",
            )
        ]
    finally:
        hooks._resolvers.pop("cameo_verification", None)


def test_a_resolver_that_raises_leaves_the_case_open():
    def resolver(**kwargs):
        raise Conflict("cameo already revoked", code="gone")

    hooks.register_case_resolver("cameo_verification", resolver)
    try:
        case = _open("cameo_2", queue="cameo_verification", subject_type="cameo")
        with pytest.raises(Conflict):
            services.case_decide(
                case=case, actor=staff(), decision="approve", reason_code="verification_passed"
            )
        case.refresh_from_db()
        assert case.is_open and not AuditEntry.objects.filter(action="decision_approve").exists()
    finally:
        hooks._resolvers.pop("cameo_verification", None)


def test_removing_a_clip_queues_its_live_remixes_for_review():
    moderator = staff()
    owner = UserFactory()
    original = make_clip(owner)
    remix = make_clip(UserFactory(), parent=original)
    remix_of_remix = make_clip(UserFactory(), parent=remix)
    case = _open(original.job.public_id, subject_type="clip", category="hate")
    services.case_decide(case=case, actor=moderator, decision="remove", reason_code="hate_speech")
    original.refresh_from_db()
    remix.refresh_from_db()
    assert original.removed_at is not None and remix.removed_at is None
    review = Case.objects.filter(queue="remix_review").order_by("subject_id")
    assert sorted(c.subject_id for c in review) == sorted(
        [remix.job.public_id, remix_of_remix.job.public_id]
    )
    assert all(c.payload["removed_ancestor"] == original.job.public_id for c in review)
