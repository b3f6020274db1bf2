"""Reads for moderation: the queues in priority order, a case with its history, a user's own
reports and appeals."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from core.errors import InvalidRequest, NotFound
from moderation.models import (
    Appeal,
    AppealStatus,
    AuditEntry,
    Case,
    CaseStatus,
    Report,
    Role,
    ScreeningDecision,
    parse_prefixed,
)
from moderation.services import role_at_least

# The queue order: worst first, then widest reach (by order of magnitude), then the most
# trusted reporter, then the longest waiting (SLA age); the id makes it total.
QUEUE_ORDER = ("-severity", "-reach_band", "-reporter_trust", "opened_at", "id")


def case_queue(
    *,
    user,
    queue: str | None = None,
    category: str | None = None,
    assigned: str | None = None,
    overdue: bool = False,
    escalated: bool | None = None,
) -> QuerySet:
    """Open cases ``user`` may work on. Escalated cases are for senior moderators only.
    ``assigned``: "me", "none" or None (any)."""
    rows = Case.objects.filter(status=CaseStatus.OPEN).select_related("assigned_to")
    if not role_at_least(user, Role.SENIOR):
        rows = rows.filter(escalated_at__isnull=True)
    if queue == "escalations":
        rows = rows.filter(escalated_at__isnull=False)
    elif queue:
        rows = rows.filter(queue=queue)
    if category:
        rows = rows.filter(category=category)
    if assigned == "me":
        rows = rows.filter(assigned_to=user)
    elif assigned == "none":
        rows = rows.filter(assigned_to__isnull=True)
    elif assigned not in (None, ""):
        raise InvalidRequest(
            "assigned must be me or none.", code="invalid_filter", param="assigned"
        )
    if overdue:
        rows = rows.filter(sla_due_at__lt=timezone.now())
    if escalated is not None:
        rows = rows.filter(escalated_at__isnull=not escalated)
    return rows.order_by(*QUEUE_ORDER)


def queue_counts(*, user) -> dict[str, int]:
    from django.db.models import Count

    rows = case_queue(user=user).order_by().values("queue").annotate(n=Count("id"))
    counts = {row["queue"]: row["n"] for row in rows}
    if role_at_least(user, Role.SENIOR):
        counts["escalations"] = case_queue(user=user, queue="escalations").count()
        counts["appeals"] = Appeal.objects.filter(status=AppealStatus.OPEN).count()
    return counts


def case_get(*, case_id: str, user) -> Case:
    pk = parse_prefixed("case", case_id)
    case = Case.objects.select_related("assigned_to").filter(pk=pk).first() if pk else None
    if case is None or (
        case.escalated_at and case.is_open and not role_at_least(user, "senior_moderator")
    ):
        raise NotFound(f"No case {case_id!r}.", code="case_not_found", param="case_id")
    return case


def case_history(case: Case) -> dict:
    """Everything known about the case's subject: its reports, notes, the audit trail of the
    subject across cases, screening decisions, and earlier cases."""
    screening_ids = [case.subject_id]
    return {
        "reports": list(case.reports.select_related("reporter").order_by("id")),
        "notes": list(case.notes.select_related("author").order_by("id")),
        "audit": list(
            AuditEntry.objects.filter(
                subject_type=case.subject_type, subject_id=case.subject_id
            ).order_by("-id")[:100]
        ),
        "screening": list(
            ScreeningDecision.objects.filter(subject_id__in=screening_ids).order_by("-id")[:20]
        ),
        "earlier": list(
            Case.objects.filter(subject_type=case.subject_type, subject_id=case.subject_id)
            .exclude(pk=case.pk)
            .order_by("-opened_at")[:20]
        ),
        "appeals": list(case.appeals.prefetch_related("messages__author").order_by("id")),
    }


def case_subject_details(case: Case) -> dict | None:
    """What the case is about, as staff see it (None: the subject is gone): for a comment,
    its text, post and removal state."""
    from moderation import subjects

    try:
        subject = subjects.resolve(case.subject_type, case.subject_id)
    except (NotFound, InvalidRequest):
        return None
    return {
        "type": subject.type,
        "id": subject.id,
        "label": subject.label,
        "owner": subject.owner.handle if subject.owner is not None else None,
        "details": subject.details,
    }


def reports_of(*, user) -> QuerySet:
    return Report.objects.filter(reporter=user)


def report_get_for_reporter(*, report_id: str, user) -> Report:
    pk = parse_prefixed("report", report_id)
    report = reports_of(user=user).filter(pk=pk).first() if pk else None
    if report is None:
        raise NotFound(f"No report {report_id!r}.", code="report_not_found", param="report_id")
    return report


def appeals_of(*, user) -> QuerySet:
    return Appeal.objects.filter(user=user).select_related("case")


def appeal_get_for_user(*, appeal_id: str, user, staff: bool = False) -> Appeal:
    pk = parse_prefixed("appeal", appeal_id)
    rows = Appeal.objects.select_related("case", "user")
    if not staff:
        rows = rows.filter(user=user)
    appeal = rows.filter(pk=pk).first() if pk else None
    if appeal is None:
        raise NotFound(f"No appeal {appeal_id!r}.", code="appeal_not_found", param="appeal_id")
    return appeal


def appeal_queue() -> QuerySet:
    return (
        Appeal.objects.filter(status=AppealStatus.OPEN)
        .select_related("case", "user")
        .order_by("created_at", "id")
    )


def audit_for(*, subject_type: str | None = None, subject_id: str | None = None) -> QuerySet:
    rows = AuditEntry.objects.all()
    if subject_type:
        rows = rows.filter(subject_type=subject_type)
    if subject_id:
        rows = rows.filter(Q(subject_id=subject_id))
    return rows
