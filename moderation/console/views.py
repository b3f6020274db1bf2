"""The staff console: server-rendered pages over the same services and selectors as the API.
Session login, CSRF on every form; the role check runs on every view."""

from __future__ import annotations

import contextlib
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from core.errors import MontageError
from moderation import policy, screening, selectors, services, subjects
from moderation.models import Category, Role


def staff_view(minimum: str = Role.MODERATOR):
    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("staff:login"))
            if not services.role_at_least(request.user, minimum):
                # Safety: the console is for trust-and-safety staff only.
                return HttpResponseForbidden(
                    render_to_string(
                        "moderation/console/forbidden.html", {"minimum": Role(minimum).label}
                    )
                )
            request.role = services.role_of(request.user)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def _base(request) -> dict:
    return {
        "counts": selectors.queue_counts(user=request.user),
        "queues": policy.QUEUES,
        "role": request.role,
        "is_senior": services.role_at_least(request.user, Role.SENIOR),
    }


def _case_or_404(request, case_id: str):
    try:
        return selectors.case_get(case_id=case_id, user=request.user)
    except MontageError as exc:
        raise Http404(str(exc.detail)) from exc


def _appeal_or_404(request, appeal_id: str):
    try:
        return selectors.appeal_get_for_user(appeal_id=appeal_id, user=request.user, staff=True)
    except MontageError as exc:
        raise Http404(str(exc.detail)) from exc


@require_GET
@staff_view()
def queue(request):
    params = request.GET
    current = params.get("queue") or ""
    try:
        rows = selectors.case_queue(
            user=request.user,
            queue=current or None,
            category=params.get("category") or None,
            assigned=params.get("assigned") or None,
            overdue=params.get("overdue") == "1",
        )
    except MontageError as exc:
        messages.error(request, exc.detail)
        rows = selectors.case_queue(user=request.user)
    cases = list(rows[:100])
    now = timezone.now()
    for case in cases:
        case.overdue = case.sla_due_at < now
    context = _base(request) | {
        "cases": cases,
        "current": current,
        "categories": Category.choices,
        "filters": params,
    }
    return render(request, "moderation/console/queue.html", context)


@require_POST
@staff_view()
def take_next(request):
    case = services.case_take_next(user=request.user, queue=request.POST.get("queue") or None)
    if case is None:
        messages.info(request, "Nothing left to take in that queue.")
        return redirect("staff:queue")
    return redirect("staff:case", case_id=case.public_id)


def _media_url(clip) -> str | None:
    from generation.apis import media_token

    if clip is None or clip.removed_at is not None:
        return None
    return f"/api/v1/media/{media_token(clip, 'video')}"


def _lineage(clip) -> dict:
    ancestors = []
    job = clip.job.parent
    while job is not None and len(ancestors) < 10:
        ancestors.append(job.public_id)
        job = job.parent
    descendants = None
    try:
        from remix.selectors import descendant_job_ids
    except ImportError:
        descendant_job_ids = None
    if descendant_job_ids is not None:
        descendants = len(descendant_job_ids([clip.job_id]))
    return {"ancestors": ancestors, "descendants": descendants}


def _subject_context(case) -> dict:
    try:
        subject = subjects.resolve(case.subject_type, case.subject_id)
    except MontageError:
        return {"subject": None}
    context = {"subject": subject, "owner": subject.owner}
    if subject.type == "clip":
        clip = subject.obj
        annotations = clip.job.annotations or {}
        context |= {
            "clip": clip,
            "media_url": _media_url(clip),
            "manifest": clip.manifest,
            "watermark": bytes(clip.watermark).hex() if clip.watermark else None,
            "lineage": _lineage(clip),
            "cameos": annotations.get("cameos") or [],
            "consent": annotations.get("consent") or [],
            "screening": annotations.get("screening") or {},
            "prompt": clip.job.prompt,
        }
    if subject.type == "comment":
        context |= {"comment": subject.details, "comment_screening": _comment_screening(subject)}
    if subject.owner is not None:
        context["owner_strikes"] = services.live_strikes(subject.owner).count()
    return context


def _comment_screening(subject) -> dict | None:
    """The comment policy's verdict on the comment now (allowed comments are not recorded at
    creation): what matched, so staff see why it would or would not be blocked."""
    text = subject.details.get("text") or ""
    teen = bool(subject.owner is not None and subject.owner.is_teen)
    teen = teen or bool(subject.details.get("on_teen_post"))
    try:
        result = screening.comment_classify(text, teen=teen)
    except Exception:  # the page must render without the classifier
        return None
    top = sorted(
        ((score, name) for name, score in result.scores.items() if name != "benign"),
        reverse=True,
    )[:3]
    return {"hits": result.explain(), "top": [{"category": n, "score": v} for v, n in top]}


def _label_actors(rows, attr: str = "actor") -> None:
    """Sets ``actor_label`` on each row: ``staff:<pk>`` and ``user:<pk>`` become @handles."""
    import uuid

    from accounts.models import User

    pks = set()
    for row in rows:
        kind, _, pk = getattr(row, attr).partition(":")
        if kind in ("staff", "user"):
            with contextlib.suppress(ValueError):
                pks.add(uuid.UUID(pk))
    handles = {str(pk): h for pk, h in User.objects.filter(pk__in=pks).values_list("pk", "handle")}
    for row in rows:
        kind, _, pk = getattr(row, attr).partition(":")
        handle = handles.get(pk)
        row.actor_label = (
            f"@{handle}" + (" (staff)" if kind == "staff" else "")
            if handle
            else (getattr(row, attr))
        )


@require_GET
@staff_view()
def case_page(request, case_id: str):
    case = _case_or_404(request, case_id)
    history = selectors.case_history(case)
    _label_actors(history["audit"])
    _label_actors([case], attr="resolved_by")
    applicable = policy.SUBJECT_DECISIONS.get(case.subject_type)
    decisions = {
        key: label
        for key, label in policy.DECISIONS.items()
        if applicable is None or key in applicable or key == "reject"
    }
    context = (
        _base(request)
        | {
            "case": case,
            "history": history,
            "decisions": decisions,
            "restorable": services.case_restorable(case),
            "senior_decisions": policy.SENIOR_DECISIONS,
            "reason_templates": policy.REASON_TEMPLATES,
            "resolver_queue": case.queue in ("cameo_verification",),
            "strike_days": settings.MODERATION_STRIKE_DAYS,
        }
        | _subject_context(case)
    )
    return render(request, "moderation/console/case.html", context)


@require_POST
@staff_view()
def case_act(request, case_id: str):
    """Assign, escalate, decide or restore, as the form's ``action`` says (each service checks
    the role it needs)."""
    case = _case_or_404(request, case_id)
    action = request.POST.get("action")
    form = request.POST
    try:
        if action == "assign_me":
            services.case_assign(case=case, assignee=request.user, actor=request.user)
            messages.success(request, "The case is yours.")
        elif action == "escalate":
            services.case_escalate(case=case, actor=request.user, reason=form.get("reason", ""))
            messages.success(request, "Escalated to senior moderators.")
            return redirect("staff:queue")
        elif action == "decide":
            days = form.get("days") or None
            services.case_decide(
                case=case,
                actor=request.user,
                decision=form.get("decision", ""),
                reason_code=form.get("reason_code", ""),
                reason=form.get("reason", ""),
                options={
                    "strike": form.get("strike") == "on",
                    "label": form.get("label", ""),
                    "days": int(days) if days and days.isdigit() else None,
                },
            )
            messages.success(request, f"Decision recorded: {form.get('decision')}.")
        elif action == "restore":
            services.case_restore(case=case, actor=request.user, reason=form.get("reason", ""))
            messages.success(request, "Restored.")
        else:
            messages.error(request, "Unknown action.")
    except MontageError as exc:
        messages.error(request, str(exc.detail))
    return redirect("staff:case", case_id=case.public_id)


@require_POST
@staff_view()
def case_note(request, case_id: str):
    case = _case_or_404(request, case_id)
    try:
        note = services.case_note_add(case=case, author=request.user, body=request.POST.get("body"))
    except MontageError as exc:
        if request.headers.get("X-Requested-With") == "fetch":
            return render(
                request, "moderation/console/_error.html", {"message": exc.detail}, status=400
            )
        messages.error(request, str(exc.detail))
        return redirect("staff:case", case_id=case.public_id)
    if request.headers.get("X-Requested-With") == "fetch":
        # The page inserts this fragment in place; no full reload for a note.
        return render(request, "moderation/console/_note.html", {"note": note})
    return redirect("staff:case", case_id=case.public_id)


@require_GET
@staff_view(Role.SENIOR)
def appeals(request):
    context = _base(request) | {"appeals": list(selectors.appeal_queue()[:100])}
    return render(request, "moderation/console/appeals.html", context)


@require_GET
@staff_view(Role.SENIOR)
def appeal_page(request, appeal_id: str):
    appeal = _appeal_or_404(request, appeal_id)
    context = (
        _base(request)
        | {
            "appeal": appeal,
            "thread": list(appeal.messages.select_related("author").order_by("id")),
            "case": appeal.case,
        }
        | _subject_context(appeal.case)
    )
    return render(request, "moderation/console/appeal.html", context)


@require_POST
@staff_view(Role.SENIOR)
def appeal_act(request, appeal_id: str):
    appeal = _appeal_or_404(request, appeal_id)
    form = request.POST
    try:
        if form.get("action") == "reply":
            services.appeal_message_add(appeal=appeal, author=request.user, body=form.get("body"))
        elif form.get("action") == "resolve":
            services.appeal_resolve(
                appeal=appeal,
                actor=request.user,
                outcome=form.get("outcome", ""),
                reason=form.get("reason", ""),
            )
            messages.success(request, f"Appeal {form.get('outcome')}.")
        else:
            messages.error(request, "Unknown action.")
    except MontageError as exc:
        messages.error(request, str(exc.detail))
    return redirect("staff:appeal", appeal_id=appeal.public_id)
