"""Writes for moderation: cases, reports, decisions and their effects, strikes, suspensions,
appeals, roles, hash banks and the rights-holder registry. Every staff action leaves an
append-only audit entry; every reporter hears the outcome."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from accounts.services import notification_create
from core import metrics
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from generation.models import Clip
from generation.services import clip_remove, clip_restore, job_event_record
from moderation import hooks, policy, subjects
from moderation.models import (
    ROLE_RANK,
    Appeal,
    AppealMessage,
    AppealStatus,
    AuditEntry,
    BankedHash,
    Case,
    CaseNote,
    CaseStatus,
    HashBank,
    ProtectedTerm,
    Report,
    ReportStatus,
    RightsHolder,
    Role,
    StaffRole,
    Strike,
    Suspension,
    Takedown,
)

# --- Roles ----------------------------------------------------------------------------------


def role_of(user) -> str | None:
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    cached = getattr(user, "_moderation_role", False)
    if cached is not False:
        return cached
    role = StaffRole.objects.filter(user_id=user.pk).values_list("role", flat=True).first()
    user._moderation_role = role
    return role


def role_at_least(user, minimum: str) -> bool:
    role = role_of(user)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def role_require(user, minimum: str = Role.MODERATOR) -> None:
    # Safety: every staff endpoint and console page goes through here.
    if not role_at_least(user, minimum):
        raise Forbidden(
            f"This needs the trust-and-safety role {Role(minimum).label.lower()} or higher.",
            code="role_required",
        )


def actor_for(user) -> str:
    return f"staff:{user.pk}" if role_of(user) else f"user:{user.pk}"


def role_grant(*, user: User, role: str, actor: User) -> StaffRole:
    role_require(actor, Role.ADMIN)
    if role not in Role.values:
        raise InvalidRequest(
            f"role must be one of {', '.join(Role.values)}.", code="invalid_role", param="role"
        )
    with transaction.atomic():
        row, _ = StaffRole.objects.update_or_create(
            user=user, defaults={"role": role, "granted_by": actor_for(actor)}
        )
        # Staff see held clips (generation.selectors.clip_visible_to reads is_staff).
        User.objects.filter(pk=user.pk).update(is_staff=True)
        audit_record(
            actor=actor_for(actor),
            action="role_granted",
            subject_type="user",
            subject_id=str(user.pk),
            detail={"role": role},
        )
    return row


def role_revoke(*, user: User, actor: User) -> bool:
    role_require(actor, Role.ADMIN)
    with transaction.atomic():
        deleted, _ = StaffRole.objects.filter(user=user).delete()
        if deleted:
            User.objects.filter(pk=user.pk, is_superuser=False).update(is_staff=False)
            audit_record(
                actor=actor_for(actor),
                action="role_revoked",
                subject_type="user",
                subject_id=str(user.pk),
            )
    return bool(deleted)


# --- Audit ----------------------------------------------------------------------------------


def audit_record(
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    case: Case | None = None,
    reason_code: str = "",
    reason: str = "",
    detail: dict | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        case=case,
        reason_code=reason_code,
        reason=reason,
        detail=detail or {},
    )


# --- Cases ----------------------------------------------------------------------------------


def _sla_due(opened_at, severity: int):
    return opened_at + dt.timedelta(hours=settings.MODERATION_SLA_HOURS[severity])


def reporter_trust(user: User) -> float:
    """How often this reporter's past reports were right (Laplace-smoothed: a new reporter
    starts at 0.5)."""
    resolved = Report.objects.filter(reporter=user).exclude(status=ReportStatus.OPEN)
    total = resolved.count()
    right = resolved.filter(status=ReportStatus.ACTIONED).count()
    return round((right + 1) / (total + 2), 4)


def case_open(
    *,
    queue: str,
    subject_type: str,
    subject_id: str,
    category: str,
    severity: int,
    summary: str,
    payload: dict | None = None,
    reporter=None,
) -> Case:
    """Opens a case on a subject in a queue, or joins the open one (one per queue + subject):
    severity only rises, reports add up, the best reporter trust counts."""
    if not 1 <= int(severity) <= 5:
        raise InvalidRequest("severity must be between 1 and 5.", code="invalid_severity")
    severity = int(severity)
    reach = 0
    try:
        reach = subjects.resolve(subject_type, subject_id).reach
    except (NotFound, InvalidRequest):
        reach = 0
    trust = reporter_trust(reporter) if reporter is not None else 0.0
    with transaction.atomic():
        case = (
            Case.objects.select_for_update()
            .filter(
                queue=queue,
                subject_type=subject_type,
                subject_id=subject_id,
                status=CaseStatus.OPEN,
            )
            .first()
        )
        if case is None:
            now = timezone.now()
            try:
                with transaction.atomic():
                    case = Case.objects.create(
                        queue=queue,
                        subject_type=subject_type,
                        subject_id=subject_id,
                        category=category,
                        severity=severity,
                        summary=summary[:500],
                        payload=payload or {},
                        reach=reach,
                        reach_band=subjects.reach_band(reach),
                        reporter_trust=trust,
                        report_count=1 if reporter is not None else 0,
                        opened_at=now,
                        sla_due_at=_sla_due(now, severity),
                    )
            except IntegrityError:
                # Another request opened it at the same moment: join that one.
                case = None
            if case is not None:
                audit_record(
                    actor=f"user:{reporter.pk}" if reporter is not None else "system",
                    action="case_opened",
                    subject_type=subject_type,
                    subject_id=subject_id,
                    case=case,
                    reason_code=category,
                    reason=summary[:500],
                )
                return case
            case = Case.objects.select_for_update().get(
                queue=queue,
                subject_type=subject_type,
                subject_id=subject_id,
                status=CaseStatus.OPEN,
            )
        if severity > case.severity:
            case.severity = severity
            case.category = category
            case.sla_due_at = min(case.sla_due_at, _sla_due(timezone.now(), severity))
        case.reach = max(case.reach, reach)
        case.reach_band = subjects.reach_band(case.reach)
        case.reporter_trust = max(case.reporter_trust, trust)
        if reporter is not None:
            case.report_count = F("report_count") + 1
        if payload:
            case.payload = {**case.payload, **payload}
        case.save()
        case.refresh_from_db(fields=["report_count"])
    return case


def _lock_case(case: Case) -> Case:
    return Case.objects.select_for_update().get(pk=case.pk)


def case_assign(*, case: Case, assignee: User | None, actor: User) -> Case:
    """Moderators take cases for themselves; handing one to someone else is for seniors."""
    role_require(actor)
    if assignee is not None and assignee.pk != actor.pk:
        role_require(actor, Role.SENIOR)
        if role_of(assignee) is None:
            raise InvalidRequest(
                "Cases can only be assigned to staff.", code="not_staff", param="assignee"
            )
    with transaction.atomic():
        case = _lock_case(case)
        if not case.is_open:
            raise Conflict("The case is already resolved.", code="case_resolved")
        if case.escalated_at and assignee is not None and not role_at_least(assignee, Role.SENIOR):
            raise Forbidden(
                "Escalated cases go to senior moderators.", code="escalated", param="assignee"
            )
        case.assigned_to = assignee
        case.assigned_at = timezone.now() if assignee else None
        case.save(update_fields=["assigned_to", "assigned_at"])
        audit_record(
            actor=actor_for(actor),
            action="case_assigned" if assignee else "case_unassigned",
            subject_type=case.subject_type,
            subject_id=case.subject_id,
            case=case,
            detail={"assignee": str(assignee.pk) if assignee else None},
        )
    return case


def case_take_next(*, user: User, queue: str | None = None) -> Case | None:
    """Assigns the highest-priority unassigned case the user may handle, or None."""
    from moderation.selectors import case_queue

    role_require(user)
    with transaction.atomic():
        candidates = case_queue(user=user, queue=queue, assigned="none").select_for_update(
            skip_locked=True, of=("self",)
        )
        case = candidates.first()
        if case is None:
            return None
        case.assigned_to = user
        case.assigned_at = timezone.now()
        case.save(update_fields=["assigned_to", "assigned_at"])
        audit_record(
            actor=actor_for(user),
            action="case_assigned",
            subject_type=case.subject_type,
            subject_id=case.subject_id,
            case=case,
            detail={"assignee": str(user.pk), "taken_from_queue": True},
        )
    return case


def case_escalate(*, case: Case, actor: User, reason: str) -> Case:
    role_require(actor)
    if not reason.strip():
        raise InvalidRequest(
            "Say why the case is escalated.", code="reason_required", param="reason"
        )
    with transaction.atomic():
        case = _lock_case(case)
        if not case.is_open:
            raise Conflict("The case is already resolved.", code="case_resolved")
        if case.escalated_at is not None:
            raise Conflict("The case is already escalated.", code="already_escalated")
        case.escalated_at = timezone.now()
        if case.assigned_to_id and not role_at_least(case.assigned_to, Role.SENIOR):
            case.assigned_to = None
            case.assigned_at = None
        case.save(update_fields=["escalated_at", "assigned_to", "assigned_at"])
        audit_record(
            actor=actor_for(actor),
            action="case_escalated",
            subject_type=case.subject_type,
            subject_id=case.subject_id,
            case=case,
            reason=reason,
        )
    return case


def case_note_add(*, case: Case, author: User, body: str) -> CaseNote:
    role_require(author)
    body = (body or "").strip()
    if not body:
        raise InvalidRequest("A note needs some text.", code="empty_note", param="body")
    if len(body) > 5000:
        raise InvalidRequest("A note is at most 5000 characters.", code="note_too_long")
    return CaseNote.objects.create(case=case, author=author, body=body)


# --- Decisions ------------------------------------------------------------------------------


def _reason_text(reason_code: str, reason: str) -> str:
    if reason_code not in policy.REASON_TEMPLATES:
        raise InvalidRequest(
            f"reason_code must be one of {', '.join(policy.REASON_TEMPLATES)}.",
            code="invalid_reason_code",
            param="reason_code",
        )
    text = policy.REASON_TEMPLATES[reason_code]
    return f"{text} {reason.strip()}".strip() if reason else text


def _clip_update(clip: Clip, actor: str, action: str, **fields) -> None:
    Clip.objects.filter(pk=clip.pk).update(**fields)
    job_event_record(clip.job, actor, action=action, **{k: str(v) for k, v in fields.items()})


def _clip_remove(clip: Clip, *, actor: str, reason: str, code: str) -> list:
    """Removal follows the remix graph: the remix app's takedown policy when installed (it
    removes the clip and queues its live descendants for review), else the clip alone."""
    try:
        from remix.services import takedown_policy
    except ImportError:
        clip_remove(clip=clip, actor=actor, reason=reason, code=code)
        return []
    return takedown_policy(clip=clip, actor=actor, reason=reason, code=code)


def _apply(case: Case, decision: str, *, actor: str, reason: str, options: dict) -> list[dict]:
    """The decision's effect on the subject, as a list of undoable effects."""
    try:
        subject = subjects.resolve(case.subject_type, case.subject_id)
    except (NotFound, InvalidRequest):
        # Gone, or of a type whose app is not installed: only approve still applies.
        subject = None
    effects: list[dict] = []
    clip = subject.obj if subject is not None and subject.type == "clip" else None
    owner = subject.owner if subject is not None else None
    if subject is None and decision != "approve":
        raise InvalidRequest(
            "The subject of this case is gone; it can only be closed with approve.",
            code="decision_not_applicable",
            param="decision",
        )
    # Subjects other than clips (comments) are removed by the app that owns them.
    remover = (
        hooks.subject_action(subject.type, "remove")
        if subject is not None and clip is None
        else None
    )
    clip_only = ("takedown_temporary", "age_restrict", "label", *(() if remover else ("remove",)))
    if decision in clip_only and clip is None:
        raise InvalidRequest(
            f"{decision} applies to clips; this case is about a {case.subject_type}.",
            code="decision_not_applicable",
            param="decision",
        )
    if clip is not None and clip.held_at is not None:
        _clip_update(clip, actor, "clip_released", held_at=None, hold_reason="")
        effects.append({"type": "released", "clip": str(clip.pk), "hold": clip.hold_reason})
    if decision in ("remove", "takedown_temporary") and clip is not None:
        descendants = _clip_remove(clip, actor=actor, reason=reason, code="policy")
        effects.append(
            {"type": "removed", "clip": str(clip.pk), "descendants": len(descendants or [])}
        )
        if decision == "takedown_temporary":
            days = int(options.get("days") or 0)
            if not 1 <= days <= 365:
                raise InvalidRequest(
                    "days must be between 1 and 365.", code="invalid_days", param="days"
                )
            takedown = Takedown.objects.create(
                clip=clip, case=case, until=timezone.now() + dt.timedelta(days=days)
            )
            effects[-1]["until"] = takedown.until.isoformat()
    elif decision == "remove":
        remover(obj=subject.obj, actor=actor, reason=reason)
        effects.append(
            {"type": "subject_removed", "subject_type": subject.type, "subject_id": subject.id}
        )
    elif decision == "age_restrict":
        _clip_update(clip, actor, "clip_age_restricted", age_restricted=True)
        effects.append({"type": "age_restricted", "clip": str(clip.pk)})
    elif decision == "label":
        label = (options.get("label") or "").strip()[:60]
        if not label:
            raise InvalidRequest("label is required.", code="label_required", param="label")
        labels = [*clip.labels, label] if label not in clip.labels else clip.labels
        _clip_update(clip, actor, "clip_labelled", labels=labels)
        effects.append({"type": "labelled", "clip": str(clip.pk), "label": label})
    elif decision == "suspend":
        if owner is None:
            raise InvalidRequest("This subject has no owner to suspend.", code="no_owner")
        days = options.get("days")
        until = timezone.now() + dt.timedelta(days=int(days)) if days else None
        suspension = user_suspend(user=owner, until=until, reason=reason, actor=actor)
        effects.append({"type": "suspended", "suspension": suspension.pk})
    if (decision == "strike" or options.get("strike")) and owner is not None:
        strike, suspension = strike_issue(
            user=owner, category=case.category, reason=reason, actor=actor, case=case
        )
        effects.append({"type": "strike", "strike": str(strike.pk)})
        if suspension is not None:
            effects.append({"type": "suspended", "suspension": suspension.pk})
    return effects


def case_decide(
    *,
    case: Case,
    actor: User,
    decision: str,
    reason_code: str,
    reason: str = "",
    options: dict | None = None,
) -> Case:
    """A staff decision on an open case: applies its effect, resolves the case and its
    reports, tells the reporters the outcome and the owner what happened, and records it."""
    role_require(actor)
    options = options or {}
    if decision not in policy.DECISIONS:
        raise InvalidRequest(
            f"decision must be one of {', '.join(policy.DECISIONS)}.",
            code="invalid_decision",
            param="decision",
        )
    if decision in policy.SENIOR_DECISIONS:
        role_require(actor, Role.SENIOR)
    text = _reason_text(reason_code, reason)
    actor_ref = actor_for(actor)
    with transaction.atomic():
        case = _lock_case(case)
        if not case.is_open:
            raise Conflict("The case is already resolved.", code="case_resolved")
        if case.escalated_at is not None:
            role_require(actor, Role.SENIOR)
        resolvers = hooks.case_resolvers(case.queue)
        if resolvers:
            # Queues owned by other apps (cameo verification) decide approve or reject; the
            # owning app applies the effect.
            if decision not in ("approve", "reject"):
                raise InvalidRequest(
                    f"Cases in {case.queue} are decided with approve or reject.",
                    code="invalid_decision",
                    param="decision",
                )
            for resolver in resolvers:
                resolver(case=case, decision=decision, actor=actor_ref, note=text)
            effects: list[dict] = []
        elif decision == "reject":
            raise InvalidRequest(
                "reject is for verification queues.", code="invalid_decision", param="decision"
            )
        else:
            effects = _apply(case, decision, actor=actor_ref, reason=text, options=options)
        case.status = CaseStatus.RESOLVED
        case.decision = decision
        case.resolved_at = timezone.now()
        case.resolved_by = actor_ref
        case.payload = {**case.payload, "effects": effects, "reason_code": reason_code}
        case.save()
        audit_record(
            actor=actor_ref,
            action=f"decision_{decision}",
            subject_type=case.subject_type,
            subject_id=case.subject_id,
            case=case,
            reason_code=reason_code,
            reason=text,
            detail={"effects": effects, "options": options},
        )
        metrics.moderation_decision(
            stage="action", subject=case.subject_type, outcome=decision, after_commit=True
        )
        _reports_resolve(case, decision=decision, outcome=text)
        _owner_notify(case, decision=decision, outcome=text)
    return case


def _reports_resolve(case: Case, *, decision: str, outcome: str) -> None:
    actioned = decision in policy.ENFORCEMENT
    status = ReportStatus.ACTIONED if actioned else ReportStatus.DISMISSED
    now = timezone.now()
    reports = list(case.reports.filter(status=ReportStatus.OPEN).select_related("reporter"))
    Report.objects.filter(pk__in=[r.pk for r in reports]).update(
        status=status, outcome=outcome[:300], resolved_at=now
    )
    metrics.moderation_decision(
        stage="report",
        subject=case.subject_type,
        outcome=status,
        count=len(reports),
        after_commit=True,
    )
    for report in reports:
        # Reporters are told what came of their report.
        notification_create(
            user=report.reporter,
            kind="report.resolved",
            data={
                "report": report.public_id,
                "status": status,
                "decision": decision,
                "outcome": outcome,
                "subject_type": report.subject_type,
                "subject_id": report.subject_id,
            },
        )


def _owner_notify(case: Case, *, decision: str, outcome: str) -> None:
    if decision not in policy.ENFORCEMENT:
        return
    try:
        owner = subjects.resolve(case.subject_type, case.subject_id).owner
    except (NotFound, InvalidRequest):
        return
    if owner is not None:
        notification_create(
            user=owner,
            kind="moderation.action",
            data={
                "case": case.public_id,
                "decision": decision,
                "reason": outcome,
                "subject_type": case.subject_type,
                "subject_id": case.subject_id,
                "appealable": True,
            },
        )


# --- Reports --------------------------------------------------------------------------------


def report_create(
    *,
    reporter: User,
    subject_type: str,
    subject_id: str,
    reason: str,
    detail: str = "",
    time_start: float | None = None,
    time_end: float | None = None,
) -> Report:
    subject = subjects.resolve(subject_type, subject_id, viewer=reporter)
    if subject.owner is not None and subject.owner.pk == reporter.pk:
        raise InvalidRequest("You cannot report yourself.", code="self_report", param="subject_id")
    if time_start is not None or time_end is not None:
        if subject.type != "clip":
            raise InvalidRequest(
                "A time range applies to clips only.", code="invalid_time_range", param="time_start"
            )
        start = time_start or 0.0
        end = time_end if time_end is not None else subject.obj.duration_s
        if not (0 <= start < end <= subject.obj.duration_s + 0.01):
            raise InvalidRequest(
                f"The time range must lie within the clip (0 to {subject.obj.duration_s:g} s).",
                code="invalid_time_range",
                param="time_start",
            )
        time_start, time_end = start, end
    if Report.objects.filter(
        reporter=reporter, subject_type=subject.type, subject_id=subject.id, status="open"
    ).exists():
        raise Conflict(
            "You already reported this; we will tell you the outcome.", code="already_reported"
        )
    summary = f"Reported for {reason}" + (f": {detail[:200]}" if detail else "")
    with transaction.atomic():
        case = case_open(
            queue="reports",
            subject_type=subject.type,
            subject_id=subject.id,
            category=reason,
            severity=policy.SEVERITY.get(reason, 1),
            summary=summary,
            reporter=reporter,
        )
        return Report.objects.create(
            reporter=reporter,
            subject_type=subject.type,
            subject_id=subject.id,
            reason=reason,
            detail=detail,
            time_start=time_start,
            time_end=time_end,
            case=case,
        )


# --- Strikes and suspensions ----------------------------------------------------------------


def live_strikes(user: User):
    return Strike.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=timezone.now())


def strike_issue(
    *, user: User, category: str, reason: str, actor: str, case: Case | None = None
) -> tuple[Strike, Suspension | None]:
    """A strike; at MODERATION_SUSPEND_AT live strikes the account is suspended for
    MODERATION_SUSPEND_DAYS, at MODERATION_BAN_AT permanently."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        strike = Strike.objects.create(
            user=user,
            case=case,
            category=category,
            reason=reason[:300],
            issued_by=actor,
            expires_at=timezone.now() + dt.timedelta(days=settings.MODERATION_STRIKE_DAYS),
        )
        audit_record(
            actor=actor,
            action="strike",
            subject_type="user",
            subject_id=str(user.pk),
            case=case,
            reason=reason,
            detail={"strike": str(strike.pk)},
        )
        count = live_strikes(user).count()
        notification_create(
            user=user,
            kind="moderation.strike",
            data={
                "reason": reason,
                "live_strikes": count,
                "expires_at": strike.expires_at.isoformat(),
            },
        )
        suspension = None
        if count >= settings.MODERATION_BAN_AT:
            suspension = user_suspend(
                user=user, until=None, reason=f"{count} strikes", actor="system"
            )
        elif count >= settings.MODERATION_SUSPEND_AT:
            until = timezone.now() + dt.timedelta(days=settings.MODERATION_SUSPEND_DAYS)
            suspension = user_suspend(
                user=user, until=until, reason=f"{count} strikes", actor="system"
            )
    return strike, suspension


def user_suspend(*, user: User, until, reason: str, actor: str) -> Suspension:
    """Disables the account (authentication refuses it) until ``until``, or for good."""
    with transaction.atomic():
        suspension = Suspension.objects.create(
            user=user, reason=reason[:300], issued_by=actor, ends_at=until
        )
        User.objects.filter(pk=user.pk).update(is_active=False)
        audit_record(
            actor=actor,
            action="suspend",
            subject_type="user",
            subject_id=str(user.pk),
            reason=reason,
            detail={"until": until.isoformat() if until else None},
        )
    return suspension


def suspension_lift(*, suspension: Suspension, actor: str, reason: str) -> bool:
    with transaction.atomic():
        suspension = Suspension.objects.select_for_update().get(pk=suspension.pk)
        if suspension.lifted_at is not None:
            return False
        suspension.lifted_at = timezone.now()
        suspension.save(update_fields=["lifted_at"])
        still = Suspension.objects.filter(user_id=suspension.user_id, lifted_at__isnull=True)
        if not still.exists():
            User.objects.filter(pk=suspension.user_id).update(is_active=True)
        audit_record(
            actor=actor,
            action="suspension_lifted",
            subject_type="user",
            subject_id=str(suspension.user_id),
            reason=reason,
        )
    return True


def expire_due() -> dict[str, int]:
    """Ends suspensions and temporary takedowns whose time is up (the periodic task)."""
    now = timezone.now()
    lifted = 0
    for suspension in Suspension.objects.filter(lifted_at__isnull=True, ends_at__lte=now):
        lifted += suspension_lift(suspension=suspension, actor="system", reason="expired")
    restored = 0
    for takedown in Takedown.objects.filter(restored_at__isnull=True, until__lte=now):
        with transaction.atomic():
            row = Takedown.objects.select_for_update().get(pk=takedown.pk)
            if row.restored_at is not None:
                continue
            clip_restore(clip=row.clip, actor="system", reason="temporary takedown ended")
            row.restored_at = now
            row.save(update_fields=["restored_at"])
            audit_record(
                actor="system",
                action="takedown_expired",
                subject_type="clip",
                subject_id=row.clip.job.public_id,
                case=row.case,
            )
            restored += 1
    return {"suspensions_lifted": lifted, "takedowns_restored": restored}


# --- Appeals --------------------------------------------------------------------------------


def appeal_open(*, user: User, case: Case, message: str) -> Appeal:
    """The person a decision acted against asks for another look; the conversation starts with
    their message."""
    message = (message or "").strip()
    if not message:
        raise InvalidRequest("Tell us why the decision is wrong.", code="empty_message")
    case = Case.objects.get(pk=case.pk)
    if case.is_open or case.decision not in policy.ENFORCEMENT:
        raise Conflict("Only a decision taken against you can be appealed.", code="not_appealable")
    try:
        owner = subjects.resolve(case.subject_type, case.subject_id).owner
    except (NotFound, InvalidRequest):
        owner = None
    if owner is None or owner.pk != user.pk:
        raise NotFound("No such decision.", code="case_not_found", param="case")
    with transaction.atomic():
        if Appeal.objects.filter(case=case, user=user, status=AppealStatus.OPEN).exists():
            raise Conflict("This decision is already under appeal.", code="appeal_open")
        appeal = Appeal.objects.create(case=case, user=user)
        AppealMessage.objects.create(appeal=appeal, author=user, body=message[:5000])
        audit_record(
            actor=f"user:{user.pk}",
            action="appeal_opened",
            subject_type=case.subject_type,
            subject_id=case.subject_id,
            case=case,
        )
    return appeal


def appeal_message_add(*, appeal: Appeal, author: User, body: str) -> AppealMessage:
    body = (body or "").strip()
    if not body:
        raise InvalidRequest("A message needs some text.", code="empty_message", param="body")
    from_staff = role_of(author) is not None and author.pk != appeal.user_id
    if not from_staff and author.pk != appeal.user_id:
        raise NotFound("No such appeal.", code="appeal_not_found")
    if appeal.status != AppealStatus.OPEN:
        raise Conflict("The appeal is closed.", code="appeal_closed")
    with transaction.atomic():
        message = AppealMessage.objects.create(
            appeal=appeal, author=author, from_staff=from_staff, body=body[:5000]
        )
        if from_staff:
            notification_create(
                user=appeal.user,
                kind="appeal.message",
                data={"appeal": appeal.public_id, "body": body[:500]},
            )
    return message


def _undo(case: Case, *, actor: str, reason: str) -> None:
    for effect in case.payload.get("effects", []):
        kind = effect["type"]
        if effect.get("restored_at"):
            continue  # a restore (case_restore) already undid it
        if kind == "subject_removed":
            _subject_restore(effect, actor=actor, reason=reason)
        elif kind in ("removed", "age_restricted", "labelled"):
            clip = Clip.objects.select_related("job").filter(pk=effect["clip"]).first()
            if clip is None:
                continue
            if kind == "removed":
                clip_restore(clip=clip, actor=actor, reason=reason)
                Takedown.objects.filter(case=case, restored_at__isnull=True).update(
                    restored_at=timezone.now()
                )
            elif kind == "age_restricted":
                _clip_update(clip, actor, "clip_age_unrestricted", age_restricted=False)
            else:
                labels = [label for label in clip.labels if label != effect["label"]]
                _clip_update(clip, actor, "clip_unlabelled", labels=labels)
        elif kind == "strike":
            Strike.objects.filter(pk=effect["strike"], revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
        elif kind == "suspended":
            suspension = Suspension.objects.filter(pk=effect["suspension"]).first()
            if suspension is not None:
                suspension_lift(suspension=suspension, actor=actor, reason=reason)


def _subject_restore(effect: dict, *, actor: str, reason: str) -> bool:
    """Undoes a ``subject_removed`` effect through the owning app; False when the subject is
    gone or was not removed."""
    restorer = hooks.subject_action(effect["subject_type"], "restore")
    try:
        subject = subjects.resolve(effect["subject_type"], effect["subject_id"])
    except (NotFound, InvalidRequest):
        return False
    if restorer is None:
        return False
    return bool(restorer(obj=subject.obj, actor=actor, reason=reason))


REMOVAL_EFFECTS = ("removed", "subject_removed")


def case_restorable(case: Case) -> list[dict]:
    """The removals a decision on ``case`` made that are not undone yet."""
    if case.is_open:
        return []
    return [
        effect
        for effect in case.payload.get("effects", [])
        if effect["type"] in REMOVAL_EFFECTS and not effect.get("restored_at")
    ]


def case_restore(*, case: Case, actor: User, reason: str) -> Case:
    """A senior moderator restores what a decision on ``case`` removed (a clip, or a comment
    and the thread it hid), outside an appeal. Strikes and suspensions stay; an appeal
    overturning the decision undoes those. The owner is told."""
    role_require(actor, Role.SENIOR)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequest("Say why it is restored.", code="reason_required", param="reason")
    actor_ref = actor_for(actor)
    with transaction.atomic():
        case = _lock_case(case)
        removals = case_restorable(case)
        if not removals:
            raise Conflict("Nothing this case removed is still removed.", code="nothing_to_restore")
        text = f"restored: {reason}"
        restored = []
        for effect in removals:
            if effect["type"] == "subject_removed":
                done = _subject_restore(effect, actor=actor_ref, reason=text)
            else:
                clip = Clip.objects.select_related("job").filter(pk=effect["clip"]).first()
                done = clip is not None and clip_restore(clip=clip, actor=actor_ref, reason=text)
                Takedown.objects.filter(case=case, restored_at__isnull=True).update(
                    restored_at=timezone.now()
                )
            effect["restored_at"] = timezone.now().isoformat()
            effect["restored_by"] = actor_ref
            restored.append({**effect, "changed": bool(done)})
        case.save(update_fields=["payload"])
        audit_record(
            actor=actor_ref,
            action="restored",
            subject_type=case.subject_type,
            subject_id=case.subject_id,
            case=case,
            reason=reason,
            detail={"effects": restored},
        )
        try:
            owner = subjects.resolve(case.subject_type, case.subject_id).owner
        except (NotFound, InvalidRequest):
            owner = None
        if owner is not None:
            notification_create(
                user=owner,
                kind="moderation.restored",
                data={
                    "case": case.public_id,
                    "reason": reason,
                    "subject_type": case.subject_type,
                    "subject_id": case.subject_id,
                },
            )
    return case


def appeal_resolve(*, appeal: Appeal, actor: User, outcome: str, reason: str) -> Appeal:
    """Ends an appeal: ``upheld`` keeps the decision, ``overturned`` undoes its effects
    (a removed clip is restored, strikes revoked, suspensions lifted)."""
    role_require(actor, Role.SENIOR)
    if outcome not in (AppealStatus.UPHELD, AppealStatus.OVERTURNED):
        raise InvalidRequest(
            "outcome must be upheld or overturned.", code="invalid_outcome", param="outcome"
        )
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRequest("Explain the outcome.", code="reason_required", param="reason")
    actor_ref = actor_for(actor)
    with transaction.atomic():
        appeal = Appeal.objects.select_for_update().select_related("case").get(pk=appeal.pk)
        if appeal.status != AppealStatus.OPEN:
            raise Conflict("The appeal is closed.", code="appeal_closed")
        if outcome == AppealStatus.OVERTURNED:
            _undo(appeal.case, actor=actor_ref, reason=f"appeal overturned: {reason}")
        appeal.status = outcome
        appeal.resolved_at = timezone.now()
        appeal.resolved_by = actor_ref
        appeal.save(update_fields=["status", "resolved_at", "resolved_by"])
        AppealMessage.objects.create(appeal=appeal, author=actor, from_staff=True, body=reason)
        audit_record(
            actor=actor_ref,
            action=f"appeal_{outcome}",
            subject_type=appeal.case.subject_type,
            subject_id=appeal.case.subject_id,
            case=appeal.case,
            reason=reason,
        )
        notification_create(
            user=appeal.user,
            kind="appeal.resolved",
            data={"appeal": appeal.public_id, "outcome": outcome, "reason": reason},
        )
    return appeal


# --- Hash banks -----------------------------------------------------------------------------


def hash_bank_create(
    *,
    name: str,
    actor: User,
    description: str = "",
    threshold: int = 31,
    action: str = "block",
    category: str = "hash_match",
) -> HashBank:
    role_require(actor, Role.ADMIN)
    if not 0 <= int(threshold) <= 64:
        raise InvalidRequest("threshold must be 0-64 bits.", code="invalid_threshold")
    if action not in ("block", "hold"):
        raise InvalidRequest("action must be block or hold.", code="invalid_action")
    if HashBank.objects.filter(name=name).exists():
        raise Conflict(f"A bank named {name!r} exists.", code="bank_exists", param="name")
    with transaction.atomic():
        bank = HashBank.objects.create(
            name=name,
            description=description,
            threshold=int(threshold),
            action=action,
            category=category,
        )
        audit_record(
            actor=actor_for(actor), action="bank_created", subject_type="bank", subject_id=name
        )
    return bank


def hash_bank_update(*, bank: HashBank, actor: User, **changes) -> HashBank:
    role_require(actor, Role.ADMIN)
    allowed = {"enabled", "threshold", "action", "description"}
    fields = [k for k in changes if k in allowed]
    for key in fields:
        setattr(bank, key, changes[key])
    with transaction.atomic():
        bank.save(update_fields=fields)
        audit_record(
            actor=actor_for(actor),
            action="bank_updated",
            subject_type="bank",
            subject_id=bank.name,
            detail={k: changes[k] for k in fields},
        )
    return bank


def parse_pdq_hex(value: str) -> bytes:
    value = (value or "").strip().lower()
    try:
        digest = bytes.fromhex(value)
    except ValueError:
        digest = b""
    if len(digest) != 32:
        raise InvalidRequest(
            "A PDQ hash is 64 hexadecimal characters.", code="invalid_hash", param="hash"
        )
    return digest


def hash_bank_add(*, bank: HashBank, digests: list[bytes], actor: User, note: str = "") -> int:
    role_require(actor, Role.ADMIN)
    with transaction.atomic():
        rows = BankedHash.objects.bulk_create(
            [
                BankedHash(bank=bank, hash=d, note=note[:200], added_by=actor_for(actor))
                for d in digests
            ],
            ignore_conflicts=True,
        )
        audit_record(
            actor=actor_for(actor),
            action="bank_hashes_added",
            subject_type="bank",
            subject_id=bank.name,
            detail={"count": len(digests), "hashes": [d.hex() for d in digests[:20]]},
        )
    return len(rows)


def hashes_from_file(upload) -> list[bytes]:
    """PDQ hashes of an uploaded image (one) or video (one per second)."""
    import io

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from generation.provenance.fingerprint import MIN_QUALITY, fingerprint_video, pdq

    data = upload.read()
    try:
        with Image.open(io.BytesIO(data)) as image:
            digest, _ = pdq(np.asarray(image.convert("RGB")))
            return [digest]
    except (UnidentifiedImageError, OSError):
        pass
    try:
        hashes = fingerprint_video(data)
    except Exception as exc:  # PyAV raises many kinds for undecodable input
        raise InvalidRequest(
            "The file is neither an image nor a video.", code="invalid_media", param="file"
        ) from exc
    digests = [h.hash for h in hashes if h.quality >= MIN_QUALITY]
    if not digests:
        raise InvalidRequest(
            "The file has no frame detailed enough to hash.", code="invalid_media", param="file"
        )
    return digests


# --- Rights-holder registry -----------------------------------------------------------------


def rights_holder_register(*, name: str, actor: User, contact: str = "") -> RightsHolder:
    role_require(actor, Role.SENIOR)
    name = (name or "").strip()
    if not name:
        raise InvalidRequest("name is required.", code="invalid_name", param="name")
    if RightsHolder.objects.filter(name__iexact=name).exists():
        raise Conflict(f"{name!r} is already registered.", code="holder_exists", param="name")
    with transaction.atomic():
        holder = RightsHolder.objects.create(name=name, contact=contact)
        audit_record(
            actor=actor_for(actor),
            action="rights_holder_registered",
            subject_type="rights_holder",
            subject_id=str(holder.pk),
        )
    return holder


def protected_term_add(
    *, holder: RightsHolder, term: str, actor: User, kind: str = "character"
) -> ProtectedTerm:
    from moderation.classifiers.normalize import normalize

    role_require(actor, Role.SENIOR)
    normalized = normalize(term or "").strip()
    if len(normalized) < 3:
        raise InvalidRequest(
            "A protected term is 3+ characters.", code="invalid_term", param="term"
        )
    if kind not in ProtectedTerm.Kind.values:
        raise InvalidRequest("kind must be character, brand or term.", code="invalid_kind")
    with transaction.atomic():
        row, created = ProtectedTerm.objects.get_or_create(
            holder=holder, normalized=normalized, defaults={"term": term.strip(), "kind": kind}
        )
        if not created:
            raise Conflict("That term is already protected.", code="term_exists", param="term")
        audit_record(
            actor=actor_for(actor),
            action="protected_term_added",
            subject_type="rights_holder",
            subject_id=str(holder.pk),
            detail={"term": term},
        )
    return row
