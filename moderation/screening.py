"""Automatic screening of jobs: the prompt when a job is created, the output (spoken lines and
scene plan, sampled frames, fingerprints against the hash banks) before its clip exists.

Fail closed: a classifier that cannot run refuses the request at creation and holds the clip
for review at completion; nothing unscreened is ever published.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connections

from core import metrics
from generation.gates import GateRefused
from generation.models import GenerationJob, JobAttempt, JobStage
from moderation.classifiers import frames as frame_classifier
from moderation.classifiers import hashes as hash_classifier
from moderation.classifiers.text import ProtectedEntry, TextResult, classify
from moderation.models import ProtectedTerm, ScreeningDecision, Verdict

logger = logging.getLogger("montage.moderation")

CATEGORY_MESSAGES = {
    "minors": "sexual content involving minors",
    "sexual": "sexual content",
    "violence": "graphic violence",
    "hate": "hateful content",
    "self_harm": "self-harm",
    "harassment": "harassment of a person",
    "real_person": "a real, well-known person who has not given a cameo",
    "rights": "a protected character or brand",
    "cameo_restriction": "a topic the cameo's owner does not allow",
    "hash_match": "media matching a banned image",
}


def protected_entries() -> list[ProtectedEntry]:
    rows = ProtectedTerm.objects.filter(enabled=True).values_list(
        "normalized", "holder__name", "kind"
    )
    return [ProtectedEntry(term, holder, kind) for term, holder, kind in rows]


def screen_texts(*, texts: list[str], user=None, cameos: list[dict] | None = None) -> TextResult:
    return classify(
        texts,
        teen=bool(user is not None and user.is_teen),
        cameos=cameos or [],
        protected=protected_entries(),
    )


def decision_record(
    *,
    subject_type: str,
    subject_id: str,
    user,
    phase: str,
    verdict: str,
    reasons: list[dict],
    context: dict,
    version: str,
    durable: bool = False,
) -> None:
    """Stores a screening decision. ``durable`` writes it on a connection of its own, so the
    record of a refusal survives the rollback of the request that was refused."""
    fields = {
        "subject_type": subject_type,
        "subject_id": subject_id,
        "user_ref": f"user:{user.pk}" if user is not None else "",
        "phase": phase,
        "verdict": verdict,
        "reasons": reasons,
        "context": context,
        "classifier_version": version,
    }
    stage = "output" if phase == "complete" else "input"
    metrics.moderation_decision(stage=stage, subject=subject_type, outcome=verdict)
    if not durable:
        ScreeningDecision.objects.create(**fields)
        return
    row = ScreeningDecision(**fields)
    wrapper = connections.create_connection("default")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute(
                "INSERT INTO moderation_screeningdecision (id, subject_type, subject_id, "
                "user_ref, phase, verdict, reasons, context, classifier_version, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)",
                [
                    row.id,
                    row.subject_type,
                    row.subject_id,
                    row.user_ref,
                    row.phase,
                    row.verdict,
                    json.dumps(row.reasons),
                    json.dumps(row.context),
                    row.classifier_version,
                    row.created_at,
                ],
            )
    finally:
        wrapper.close()


def refusal_message(result: TextResult) -> str:
    names = [CATEGORY_MESSAGES.get(c, c) for c in result.categories]
    first = result.primary
    shown = f" (matched: {first.matched!r})" if first.source != "meaning" else ""
    return f"This prompt was refused by content screening: {', '.join(names)}{shown}."


def job_texts(job: GenerationJob) -> list[str]:
    shots = [shot.get("prompt", "") for shot in (job.params or {}).get("storyboard") or []]
    return [job.prompt, *shots]


def screen_job_create(job: GenerationJob) -> None:
    cameos = (job.annotations or {}).get("cameos") or []
    try:
        result = screen_texts(texts=job_texts(job), user=job.user, cameos=cameos)
    except Exception as exc:
        logger.exception("input screening failed for %s", job.public_id)
        # Safety: fail closed. An unscreened prompt is never rendered.
        raise GateRefused(
            "screening_unavailable",
            "Content screening is unavailable right now; try again shortly.",
            status=503,
        ) from exc
    verdict = Verdict.BLOCK if result.flagged else Verdict.ALLOW
    decision_record(
        subject_type="job",
        subject_id=job.public_id,
        user=job.user,
        phase="create",
        verdict=verdict,
        reasons=result.explain(),
        context={"scores": result.scores, "teen": job.user.is_teen, "cameos": len(cameos)},
        version=result.version,
        durable=result.flagged,
    )
    job.annotations = {
        **(job.annotations or {}),
        "screening": {"create": verdict, "categories": result.categories},
    }
    if result.flagged:
        raise GateRefused(
            f"content_policy_{result.primary.category}",
            refusal_message(result),
            status=400,
            param="prompt",
        )


def _spoken_and_planned(job: GenerationJob) -> list[str]:
    plan = job.plan or {}
    texts = [line.get("text", "") for line in plan.get("dialogue") or []]
    texts += [shot.get("description", "") for shot in plan.get("shots") or []]
    texts += [obj.get("label", "") for obj in plan.get("objects") or []]
    return [t for t in texts if t]


def rendered_video_name(job: GenerationJob) -> str | None:
    """The encoded, signed video the running post-processing attempt stored (generation.work
    stores it under ``clips/<job>/<attempt>/video.mp4`` before the completion gates run).
    The worker hands it to the gates as ``job.output``; the attempt lookup serves callers that
    screen a job outside the worker."""
    output = getattr(job, "output", None)
    if output is not None:
        return output.video
    attempt = (
        JobAttempt.objects.filter(
            job=job,
            stage=JobStage.POSTPROCESSING,
            outcome=JobAttempt.Outcome.RUNNING,
            worker=job.lease_owner,
        )
        .order_by("-pk")
        .first()
    )
    if attempt is None:
        return None
    name = f"clips/{job.id.hex}/{attempt.pk}/video.mp4"
    return name if default_storage.exists(name) else None


def screen_output(job: GenerationJob) -> dict:
    """Scores the finished output; returns {"verdict", "reasons", "context"}."""
    reasons: list[dict] = []
    context: dict = {}
    verdict = Verdict.ALLOW

    def worst(new: str) -> None:
        nonlocal verdict
        order = [Verdict.ALLOW, Verdict.HOLD, Verdict.BLOCK]
        if order.index(new) > order.index(verdict):
            verdict = new

    cameos = (job.annotations or {}).get("cameos") or []
    texts = _spoken_and_planned(job)
    if texts:
        result = screen_texts(texts=texts, user=job.user, cameos=cameos)
        context["text_scores"] = result.scores
        for hit in result.explain():
            reasons.append({**hit, "stage": "transcript"})
            worst(Verdict.BLOCK)

    name = rendered_video_name(job)
    if name is None:
        raise FileNotFoundError(f"no rendered video for {job.public_id}")
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    sampled = frame_classifier.sample_frames(data, max_frames=settings.MODERATION_MAX_FRAMES)
    if not sampled:
        raise ValueError("no frames could be decoded")
    scores = frame_classifier.nudity_scores(sampled)
    top = max(scores, key=lambda s: s.score)
    context["frames_scored"] = len(scores)
    context["nudity_max"] = top.score
    if top.score >= settings.MODERATION_NUDITY_HOLD:
        action = Verdict.BLOCK if top.score >= settings.MODERATION_NUDITY_BLOCK else Verdict.HOLD
        # Safety: any nudity in a teen's clip, or with a real person's cameo, blocks.
        if job.user.is_teen or any(c.get("kind", "person") == "person" for c in cameos):
            action = Verdict.BLOCK
        reasons.append(
            {
                "category": "sexual",
                "score": top.score,
                "threshold": settings.MODERATION_NUDITY_HOLD,
                "source": "frames",
                "matched": top.label,
                "detail": {"second": top.second, "action": action},
                "stage": "frames",
            }
        )
        worst(action)

    fingerprints = frame_classifier.frame_hashes(sampled)
    context["fingerprints"] = len(fingerprints)
    for found in hash_classifier.match([(h.second, h.hash) for h in fingerprints]):
        reasons.append(
            {
                "category": found.category,
                "score": found.distance,
                "threshold": found.threshold,
                "source": "hash_bank",
                "matched": found.bank,
                "detail": {"second": found.second, "banked": found.banked_id},
                "stage": "hashes",
            }
        )
        worst(found.action)
    return {"verdict": verdict, "reasons": reasons, "context": context}


def screen_job_complete(job: GenerationJob) -> None:
    try:
        outcome = screen_output(job)
        version = f"{frame_classifier.VERSION}+text"
    except Exception as exc:
        logger.exception("output screening failed for %s", job.public_id)
        # Safety: fail closed. The clip is made but held for review, never published.
        outcome = {
            "verdict": Verdict.HOLD,
            "reasons": [
                {
                    "category": "screening_unavailable",
                    "score": 0,
                    "threshold": 0,
                    "source": "error",
                    "matched": type(exc).__name__,
                    "detail": {"error": str(exc)[:300]},
                }
            ],
            "context": {},
        }
        version = "unavailable"
    decision_record(
        subject_type="job",
        subject_id=job.public_id,
        user=job.user,
        phase="complete",
        verdict=outcome["verdict"],
        reasons=outcome["reasons"],
        context=outcome["context"],
        version=version,
    )
    screening = {**(job.annotations or {}).get("screening", {}), "complete": outcome["verdict"]}
    job.annotations = {**(job.annotations or {}), "screening": screening}
    if outcome["verdict"] == Verdict.BLOCK:
        first = outcome["reasons"][0]
        raise GateRefused(
            f"content_policy_{first['category']}",
            f"The output was blocked by content screening: "
            f"{CATEGORY_MESSAGES.get(first['category'], first['category'])}.",
        )
    if outcome["verdict"] == Verdict.HOLD:
        first = outcome["reasons"][0]
        job.annotations["moderation_hold"] = {
            "category": first["category"],
            "reason": f"screening: {first['category']} ({first['source']})",
            "reasons": outcome["reasons"],
        }


def text_check(
    *, text: str, user, subject_type: str, subject_id: str = "", param: str = "text"
) -> None:
    """Screens user text that is not a prompt (captions, comments, cameo preferences) for the
    apps that store it: refuses with a 400 naming the category, records the decision either
    way, and fails closed with a 503."""
    from core.errors import InvalidRequest, MontageError

    try:
        result = screen_texts(texts=[text], user=user)
    except Exception as exc:
        logger.exception("text screening failed for %s %s", subject_type, subject_id)
        error = MontageError(
            "Content screening is unavailable right now; try again shortly.",
            code="screening_unavailable",
            param=param,
        )
        error.status_code = 503
        raise error from exc
    decision_record(
        subject_type=subject_type,
        subject_id=subject_id,
        user=user,
        phase="text",
        verdict=Verdict.BLOCK if result.flagged else Verdict.ALLOW,
        reasons=result.explain(),
        context={"scores": result.scores},
        version=result.version,
        durable=result.flagged,
    )
    if result.flagged:
        names = ", ".join(CATEGORY_MESSAGES.get(c, c) for c in result.categories)
        raise InvalidRequest(
            f"This text was refused by content screening: {names}.",
            code=f"content_policy_{result.primary.category}",
            param=param,
        )


def comment_thresholds(*, teen: bool) -> dict[str, float]:
    """The comment policy's thresholds (moderation.policy.COMMENT_THRESHOLD), stricter where
    the prompt policy is stricter for teens."""
    from moderation.classifiers.text import TEEN_SENSITIVE
    from moderation.policy import COMMENT_THRESHOLD

    return {
        category: COMMENT_THRESHOLD
        - (settings.MODERATION_TEEN_MARGIN if teen and category in TEEN_SENSITIVE else 0.0)
        for category in settings.MODERATION_THRESHOLDS
    }


def comment_classify(text: str, *, teen: bool):
    """The comment policy's classification of ``text``: what creation enforces and what the
    staff console shows."""
    from moderation.classifiers.text import classify
    from moderation.policy import COMMENT_BENIGN_MARGIN

    return classify(
        [text],
        kind="comment",
        teen=teen,
        limits=comment_thresholds(teen=teen),
        min_margin=COMMENT_BENIGN_MARGIN,
    )


def comment_screen(*, text: str, author, post_author=None, post_id: str = "") -> None:
    """Screens a comment before it is stored, with the input classifier under the comment
    policy (no real-person or rights refusals: a comment generates no likeness). A comment
    written by, or on a post by, a teen account gets the teen thresholds. Refuses with 422
    naming the category and records the refusal durably (the request rolls back); fails closed
    with 503."""
    from core.errors import MontageError, Unprocessable

    teen = bool(author.is_teen or (post_author is not None and post_author.is_teen))
    try:
        result = comment_classify(text, teen=teen)
    except Exception as exc:
        logger.exception("comment screening failed on %s", post_id)
        # Safety: fail closed. An unscreened comment is never stored.
        error = MontageError(
            "Content screening is unavailable right now; try again shortly.",
            code="screening_unavailable",
            param="body",
        )
        error.status_code = 503
        raise error from exc
    if not result.flagged:
        # Allowed comments are not recorded: a row per comment would double the writes of the
        # busiest table for nothing a reviewer needs (a reported comment is screened again
        # on its case page).
        return
    decision_record(
        subject_type="comment",
        subject_id="",
        user=author,
        phase="comment",
        verdict=Verdict.BLOCK,
        reasons=result.explain(),
        context={"scores": result.scores, "teen": teen, "post": post_id},
        version=f"{result.version}+comment",
        durable=True,
    )
    names = ", ".join(CATEGORY_MESSAGES.get(c, c) for c in result.categories)
    raise Unprocessable(
        f"This comment was not posted: content screening found {names}.",
        code=f"content_policy_{result.primary.category}",
        param="body",
    )
