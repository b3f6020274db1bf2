"""Writes for generation: validating requests, creating and cancelling jobs, quotas, and the
state transitions the workers make."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import re
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.db import transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from accounts.models import User
from core import metrics
from core.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    MontageError,
    PayloadTooLarge,
    RateLimited,
)
from core.ids import uuid7
from core.realtime import publish_to_user
from generation.engines.base import API_SIZES, NATIVE_SIZES
from generation.gates import CREATE, GateRefused, run_gates
from generation.models import (
    TERMINAL,
    GenerationJob,
    JobEvent,
    JobKind,
    JobStage,
    JobStatus,
)
from generation.provenance.c2pa_sign import params_sha256

OPENAI_SECONDS = (4, 8, 12)
EXTENSION_SECONDS = (4, 8, 12, 16, 20)
PRIORITIES = {"low": 2, "normal": 5, "high": 8}
MAX_REFERENCE_PIXELS = 40_000_000
REFERENCE_FORMATS = {"PNG", "JPEG", "WEBP"}


@dataclass
class JobSpec:
    """A validated request for one or more clips."""

    prompt: str
    model: str
    engine: str
    seconds: int
    size: str
    kind: str = JobKind.CREATE
    seed: int | None = None
    priority: int = PRIORITIES["normal"]
    variants: int = 1
    parent: GenerationJob | None = None
    # A stitch's clips, in order (``parent`` is the first).
    parents: list[GenerationJob] | None = None
    closing_seconds: int = 0
    storyboard: list[dict] | None = None
    cameos: list[str] = field(default_factory=list)
    input_reference: UploadedFile | None = None
    reference_sha256: str | None = None


# --- Validation ---------------------------------------------------------------------------


def resolve_model(name: str | None) -> tuple[str, str]:
    """(model name as the client gave it, engine that runs it)."""
    model = (name or settings.GENERATION_DEFAULT_MODEL).strip()
    engine = settings.GENERATION_MODEL_ALIASES.get(model)
    if engine is None or engine not in settings.GENERATION_ENGINES:
        known = ", ".join(sorted(settings.GENERATION_MODEL_ALIASES))
        raise InvalidRequest(
            f"Unknown model {model!r}; available: {known}.", code="invalid_model", param="model"
        )
    return model, engine


def validate_prompt(prompt: str | None) -> str:
    prompt = (prompt or "").strip()
    if not prompt:
        raise InvalidRequest("prompt must not be empty.", code="invalid_prompt", param="prompt")
    limit = settings.GENERATION_MAX_PROMPT_CHARS
    if len(prompt) > limit:
        raise InvalidRequest(
            f"prompt is {len(prompt)} characters; the limit is {limit}.",
            code="prompt_too_long",
            param="prompt",
        )
    return prompt


def validate_size(size: str | None, *, native: bool) -> str:
    size = (size or "720x1280").strip()
    allowed = API_SIZES + NATIVE_SIZES if native else API_SIZES
    if size not in allowed:
        raise InvalidRequest(
            f"Unsupported size {size!r}; supported: {', '.join(allowed)}.",
            code="invalid_size",
            param="size",
        )
    return size


def validate_seconds(raw, *, allowed: tuple[int, ...] | None) -> int:
    if raw in (None, ""):
        return 4
    try:
        seconds = int(str(raw).strip())
    except ValueError as exc:
        raise InvalidRequest(
            "seconds must be an integer.", code="invalid_seconds", param="seconds"
        ) from exc
    if allowed is not None and seconds not in allowed:
        raise InvalidRequest(
            f"seconds must be one of {', '.join(map(str, allowed))}.",
            code="invalid_seconds",
            param="seconds",
        )
    if not 1 <= seconds <= settings.GENERATION_MAX_SECONDS:
        raise InvalidRequest(
            f"seconds must be between 1 and {settings.GENERATION_MAX_SECONDS}.",
            code="invalid_seconds",
            param="seconds",
        )
    return seconds


def validate_reference_image(upload: UploadedFile) -> str:
    """Checks an ``input_reference`` upload is a sane image; returns its SHA-256."""
    limit = settings.GENERATION_MAX_REFERENCE_BYTES
    if upload.size > limit:
        raise PayloadTooLarge(
            f"input_reference is {upload.size} bytes; the limit is {limit}.",
            param="input_reference",
        )
    data = upload.read()
    upload.seek(0)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in REFERENCE_FORMATS:
                raise InvalidRequest(
                    "input_reference must be a PNG, JPEG or WebP image.",
                    code="invalid_image",
                    param="input_reference",
                )
            if image.width * image.height > MAX_REFERENCE_PIXELS:
                raise InvalidRequest(
                    "input_reference has too many pixels.",
                    code="invalid_image",
                    param="input_reference",
                )
            image.load()  # a truncated or corrupt file fails here, not in the worker
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InvalidRequest(
            "input_reference is not a readable image.",
            code="invalid_image",
            param="input_reference",
        ) from exc
    return hashlib.sha256(data).hexdigest()


DATA_URL = re.compile(r"^data:(image/(?:png|jpeg|webp));base64,(.*)$", re.DOTALL)


def reference_from_object(*, image_url, file_id) -> UploadedFile:
    """An ``input_reference`` object as an upload. Only inline data URLs are accepted: fetching
    a URL from a request would let clients make the server call arbitrary addresses, and this
    server has no Files API for ``file_id``."""
    if file_id is not None:
        raise InvalidRequest(
            "input_reference.file_id is not supported; upload the image or send a data URL.",
            code="unsupported_reference",
            param="input_reference",
        )
    match = DATA_URL.match(image_url) if isinstance(image_url, str) else None
    if match is None:
        raise InvalidRequest(
            "input_reference.image_url must be a data URL (data:image/png;base64,...).",
            code="unsupported_reference",
            param="input_reference",
        )
    encoded = match.group(2)
    if len(encoded) * 3 // 4 > settings.GENERATION_MAX_REFERENCE_BYTES:
        raise PayloadTooLarge("input_reference is too large.", param="input_reference")
    try:
        data = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise InvalidRequest(
            "input_reference.image_url is not valid base64.",
            code="invalid_image",
            param="input_reference",
        ) from exc
    return SimpleUploadedFile("reference", data, content_type=match.group(1))


def params_for(spec: JobSpec, *, seed: int, variant_index: int) -> dict:
    """The full, normalised job parameters: what the params hash and the manifest cover."""
    return {
        "kind": spec.kind,
        "prompt": spec.prompt,
        "model": spec.model,
        "engine": spec.engine,
        "seconds": spec.seconds,
        "size": spec.size,
        "seed": seed,
        "variant_index": variant_index,
        "storyboard": spec.storyboard,
        "cameos": spec.cameos,
        "parent": spec.parent.public_id if spec.parent else None,
        "input_reference_sha256": spec.reference_sha256,
        # Only a stitch has several parents; other kinds keep the shape (and hash) they had.
        **(
            {
                "parents": [job.public_id for job in spec.parents],
                "closing_seconds": spec.closing_seconds,
            }
            if spec.parents
            else {}
        ),
    }


def params_hash(params: dict) -> str:
    # The same canonical hash the C2PA manifest carries, so the two can be compared.
    return params_sha256(params)


MENTION = re.compile(r"(?<![\w@])@([a-z0-9_][a-z0-9_.]{1,28}[a-z0-9_])", re.IGNORECASE)


def cameo_mentions(*texts: str) -> list[str]:
    """The ``@handles`` named in a prompt and its storyboard shots, lowercased."""
    return sorted({m.lower() for text in texts for m in MENTION.findall(text or "")})


def consent_gate_installed() -> bool:
    from generation.gates import gates

    return any(getattr(gate, "handles_cameos", False) for gate in gates())


def job_spec_build(
    *,
    prompt: str,
    model: str | None,
    seconds,
    size: str | None,
    native: bool,
    allowed_seconds: tuple[int, ...] | None,
    **extra,
) -> JobSpec:
    """Validates a request into a JobSpec (every API that creates jobs goes through here)."""
    prompt = validate_prompt(prompt)
    model_name, engine = resolve_model(model)
    spec = JobSpec(
        prompt=prompt,
        model=model_name,
        engine=engine,
        seconds=validate_seconds(seconds, allowed=allowed_seconds),
        size=validate_size(size, native=native),
        **extra,
    )
    width, height = (int(v) for v in spec.size.split("x"))
    if width * height * spec.seconds * 24 > settings.GENERATION_MAX_PIXEL_FRAMES:
        raise InvalidRequest(
            f"{spec.seconds} s at {spec.size} is more than one job may render; use a shorter "
            "clip or a smaller size.",
            code="clip_too_large",
            param="seconds",
        )
    shots = [shot.get("prompt", "") for shot in spec.storyboard or []]
    spec.cameos = cameo_mentions(prompt, *shots)
    if spec.cameos and not consent_gate_installed():
        # Safety: with no consent gate installed, nobody's likeness may be used.
        raise Forbidden(
            "Cameos are not available on this server.", code="cameos_unavailable", param="prompt"
        )
    if spec.input_reference is not None:
        spec.reference_sha256 = validate_reference_image(spec.input_reference)
    return spec


def priority_for(*, user: User, name: str) -> int:
    """Anyone may lower their job's priority; jumping the queue is for staff and operators."""
    if name == "high" and not user.is_staff:
        raise Forbidden(
            "Only staff accounts may use priority 'high'.",
            code="priority_not_allowed",
            param="priority",
        )
    return PRIORITIES[name]


# --- Quotas -------------------------------------------------------------------------------


def quota_for(user: User) -> dict[str, int]:
    return settings.GENERATION_QUOTAS["teen" if user.is_teen else "adult"]


def quota_check(*, user: User, wanted: int) -> None:
    """Raises 429 when ``wanted`` more jobs would exceed the user's quotas. The caller holds a
    lock on the user row, so concurrent requests cannot both slip under the limit."""
    quota = quota_for(user)
    active = GenerationJob.objects.filter(user=user, deleted_at__isnull=True).exclude(
        status__in=TERMINAL
    )
    if active.count() + wanted > quota["concurrent"]:
        raise RateLimited(
            f"You can have {quota['concurrent']} generation(s) running at once; wait for one to "
            "finish.",
            code="concurrent_limit_exceeded",
            retry_after=10,
        )
    window_start = timezone.now() - dt.timedelta(days=1)
    # A job that failed for the system's fault does not count (counts_against_quota=False).
    recent = GenerationJob.objects.filter(
        user=user, created_at__gte=window_start, counts_against_quota=True
    )
    used = recent.count()
    if used + wanted > quota["daily"]:
        oldest = recent.order_by("created_at").values_list("created_at", flat=True).first()
        retry = (oldest + dt.timedelta(days=1) - timezone.now()).total_seconds() if oldest else 60
        raise RateLimited(
            f"Daily generation limit of {quota['daily']} reached.",
            code="daily_limit_exceeded",
            retry_after=int(retry) + 1,
        )


# --- Jobs ---------------------------------------------------------------------------------


def job_event_record(job: GenerationJob, actor: str, **detail) -> None:
    JobEvent.objects.create(job=job, actor=actor, status=job.status, stage=job.stage, detail=detail)


def job_payload(job: GenerationJob) -> dict:
    return {
        "id": job.public_id,
        "status": job.status,
        "stage": job.stage,
        "progress": job.progress,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
    }


def job_publish(job: GenerationJob, event: str) -> None:
    payload = job_payload(job)
    transaction.on_commit(lambda: publish_to_user(job.user_id, event, payload))


def job_create(*, user: User, spec: JobSpec) -> list[GenerationJob]:
    """Creates ``spec.variants`` jobs (one clip each) and enqueues them after commit."""
    from generation.tasks import enqueue_render

    if not 1 <= spec.variants <= 4:
        raise InvalidRequest(
            "variants must be between 1 and 4.", code="invalid_variants", param="variants"
        )
    base_seed = spec.seed if spec.seed is not None else secrets.randbelow(2**31)
    jobs: list[GenerationJob] = []
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        quota_check(user=user, wanted=spec.variants)
        group = uuid7() if spec.variants > 1 else None
        reference_name = None
        for index in range(spec.variants):
            seed = (base_seed + index) % 2**63
            params = params_for(spec, seed=seed, variant_index=index)
            job = GenerationJob(
                user=user,
                kind=spec.kind,
                prompt=spec.prompt,
                model=spec.model,
                engine=spec.engine,
                seconds=spec.seconds,
                size=spec.size,
                seed=seed,
                priority=spec.priority,
                params=params,
                params_hash=params_hash(params),
                parent=spec.parent,
                variant_group=group,
                variant_index=index,
            )
            try:
                run_gates(job, CREATE)
            except GateRefused as refusal:
                error = MontageError(refusal.reason, code=refusal.code, param=refusal.param)
                error.status_code = refusal.status
                raise error from refusal
            if reference_name is None and spec.input_reference is not None:
                # Stored once for all variants, and only for a request the gates let through.
                spec.input_reference.seek(0)
                reference_name = default_storage.save(
                    f"references/{job.id.hex}-{spec.reference_sha256[:12]}", spec.input_reference
                )
            if reference_name is not None:
                job.input_reference.name = reference_name
            job.save()
            job_event_record(job, f"user:{user.pk}", action="created")
            enqueue_render(job)
            jobs.append(job)
    return jobs


def _drop_intermediate(job: GenerationJob) -> None:
    """Forgets the job's render hand-off and deletes the file once the change commits."""
    name, job.intermediate = job.intermediate, ""
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))


def job_derive(
    *,
    user: User,
    parent: GenerationJob,
    kind: str,
    prompt: str,
    extra_seconds: int = 0,
) -> GenerationJob:
    """A remix, extension or edit of a completed clip: same model and size as the parent.

    - remix: the new prompt, a new seed;
    - extension: the parent's shots again (the engine is deterministic, so they render the same
      frames) followed by ``extra_seconds`` of the new prompt;
    - edit: the instruction applied to the parent's scene plan, with the parent's seed, so only
      what the instruction names changes (generation.work).
    """
    prompt = validate_prompt(prompt)
    fields: dict = {"kind": kind, "parent": parent}
    seconds = parent.seconds
    if kind == JobKind.EXTEND:
        shots = parent.params.get("storyboard") or [
            {"prompt": parent.prompt, "seconds": parent.seconds}
        ]
        fields["storyboard"] = [*shots, {"prompt": prompt, "seconds": extra_seconds}]
        seconds += extra_seconds
    elif kind == JobKind.EDIT:
        fields["seed"] = parent.seed
    spec = job_spec_build(
        prompt=prompt,
        model=parent.model,
        seconds=seconds,
        size=parent.size,
        native=True,
        allowed_seconds=None,
        **fields,
    )
    (job,) = job_create(user=user, spec=spec)
    return job


def _shots_of(job: GenerationJob) -> list[dict]:
    return [dict(shot) for shot in job.params.get("storyboard") or []] or [
        {"prompt": job.prompt, "seconds": job.seconds}
    ]


def job_stitch(
    *, user: User, parents: list[GenerationJob], prompt: str, extra_seconds: int = 0
) -> GenerationJob:
    """One clip joining completed clips in order: each one rendered again from its own plan
    and seed (generation.stitch), then, when ``extra_seconds`` is given, a closing shot of
    ``prompt``. The storyboard records every shot; the model and size are the first clip's.
    Every clip is a parent: the lineage gate checks the remix rules for each, and the consent
    gate re-checks every cameo any of them shows."""
    prompt = validate_prompt(prompt)
    limit = settings.GENERATION_STITCH_MAX_PARENTS
    if not 2 <= len(parents) <= limit:
        raise InvalidRequest(
            f"A stitch joins between 2 and {limit} videos.", code="invalid_videos", param="videos"
        )
    if len({job.pk for job in parents}) != len(parents):
        raise InvalidRequest(
            "A stitch cannot use the same video twice.", code="duplicate_video", param="videos"
        )
    shots = [shot for job in parents for shot in _shots_of(job)]
    if extra_seconds:
        shots.append({"prompt": prompt, "seconds": extra_seconds})
    first = parents[0]
    spec = job_spec_build(
        prompt=prompt,
        model=first.model,
        seconds=round(sum(shot["seconds"] for shot in shots)),
        size=first.size,
        native=True,
        allowed_seconds=None,
        kind=JobKind.STITCH,
        parent=first,
        parents=list(parents),
        closing_seconds=extra_seconds,
        storyboard=shots,
    )
    (job,) = job_create(user=user, spec=spec)
    return job


def job_cancel(*, job: GenerationJob, actor: User) -> GenerationJob:
    """A queued job never starts; a running one is told to stop (it checks about every frame)."""
    from generation.tasks import signal_cancel

    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if job.is_terminal:
            raise Conflict(f"The job is already {job.status}.", code="job_not_cancellable")
        job.cancel_requested_at = timezone.now()
        fields = ["cancel_requested_at"]
        if job.stage in {JobStage.QUEUED, JobStage.RENDERED}:
            # Nobody owns it right now: cancel it here; a task arriving later will skip it.
            # Only a job that never reached the GPU is given back to the quota.
            job.counts_against_quota = job.stage != JobStage.QUEUED
            job.status = JobStatus.CANCELLED
            job.stage = JobStage.DONE
            job.completed_at = timezone.now()
            _drop_intermediate(job)
            fields += ["status", "stage", "counts_against_quota", "completed_at", "intermediate"]
            metrics.job_finished(job)
        job.save(update_fields=fields)
        job_event_record(job, f"user:{actor.pk}", action="cancel_requested")
        job_publish(job, "job.updated")
    signal_cancel(job.pk)
    return job


def job_stop(*, job: GenerationJob, actor: str, code: str, reason: str) -> GenerationJob:
    """Stops a job for a safety reason (a revoked cameo, a removed parent, a moderation hold):
    it ends ``blocked`` with ``code`` and ``reason`` and never yields a clip.

    A job nobody owns right now is blocked here. A running one is told to stop and keeps the
    reason in ``annotations["stop"]``, so the worker ends it ``blocked`` too; should it reach
    completion first, the gates' second check refuses it there. ``actor`` is ``user:<id>``,
    ``staff:<id>`` or ``system``. A finished job is returned unchanged.
    """
    from generation.tasks import signal_cancel

    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if job.is_terminal:
            return job
        job.cancel_requested_at = timezone.now()
        job.annotations = {**job.annotations, "stop": {"code": code, "reason": reason}}
        fields = ["cancel_requested_at", "annotations"]
        if job.stage in {JobStage.QUEUED, JobStage.RENDERED}:
            job.status = JobStatus.BLOCKED
            job.stage = JobStage.DONE
            job.error_code = code
            job.error_message = reason[:2000]
            job.completed_at = timezone.now()
            _drop_intermediate(job)
            fields += ["status", "stage", "error_code", "error_message", "completed_at"]
            fields.append("intermediate")
            metrics.job_finished(job)
        job.save(update_fields=fields)
        job_event_record(job, actor, action="stopped", code=code)
        job_publish(job, "job.failed" if job.is_terminal else "job.updated")
    signal_cancel(job.pk)
    return job


def clip_remove(*, clip, actor: str, reason: str, code: str = "removed") -> bool:
    """Takes a clip down: from then on no feed, URL or signed link serves it. The files stay
    (moderation may need them, and a reversal restores the clip); the removal is recorded in the
    job's event log. Returns False when the clip was already removed."""
    from generation.models import Clip

    with transaction.atomic():
        clip = Clip.objects.select_for_update().select_related("job").get(pk=clip.pk)
        if clip.removed_at is not None:
            return False
        clip.removed_at = timezone.now()
        clip.removal_reason = f"{code}: {reason}"[:200]
        clip.save(update_fields=["removed_at", "removal_reason"])
        job_event_record(clip.job, actor, action="clip_removed", code=code, reason=reason)
        job_publish(clip.job, "job.updated")
    return True


def clip_restore(*, clip, actor: str, reason: str) -> bool:
    """Reverses :func:`clip_remove` (an overturned decision). Returns False when it was live."""
    from generation.models import Clip

    with transaction.atomic():
        clip = Clip.objects.select_for_update().select_related("job").get(pk=clip.pk)
        if clip.removed_at is None:
            return False
        clip.removed_at = None
        clip.removal_reason = ""
        clip.save(update_fields=["removed_at", "removal_reason"])
        job_event_record(clip.job, actor, action="clip_restored", reason=reason)
        job_publish(clip.job, "job.updated")
    return True


def job_retry(*, job: GenerationJob, actor: User) -> GenerationJob:
    """Runs a failed job again under the same id and parameters."""
    from generation.tasks import enqueue_render

    with transaction.atomic():
        User.objects.select_for_update().filter(pk=actor.pk).first()
        job = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if job.status != JobStatus.FAILED:
            raise Conflict("Only a failed job can be retried.", code="job_not_retryable")
        quota_check(user=job.user, wanted=1)
        job.status = JobStatus.QUEUED
        job.stage = JobStage.QUEUED
        job.progress = 0
        job.error_code = job.error_message = job.error_param = ""
        job.counts_against_quota = True
        job.cancel_requested_at = None
        job.completed_at = None
        job.lease_owner = ""
        job.lease_expires_at = None
        job.save()
        job_event_record(job, f"user:{actor.pk}", action="retried")
        enqueue_render(job)
    return job


def job_delete(*, job: GenerationJob, actor: User) -> None:
    """Deletes a video: stops it if running, removes its files, hides the row."""
    from generation.tasks import signal_cancel

    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job.pk)
        job.deleted_at = timezone.now()
        fields = ["deleted_at"]
        if not job.is_terminal:
            job.counts_against_quota = job.stage != JobStage.QUEUED
            job.status = JobStatus.CANCELLED
            job.stage = JobStage.DONE
            job.cancel_requested_at = timezone.now()
            _drop_intermediate(job)
            fields += [
                "status",
                "stage",
                "cancel_requested_at",
                "counts_against_quota",
                "intermediate",
            ]
            metrics.job_finished(job)
        job.save(update_fields=fields)
        if (
            job.input_reference
            and not GenerationJob.objects.filter(
                input_reference=job.input_reference.name, deleted_at__isnull=True
            )
            .exclude(pk=job.pk)
            .exists()
        ):
            # Variants share one stored reference; the last one deleted takes it along.
            name = job.input_reference.name
            transaction.on_commit(lambda: default_storage.delete(name))
        job_event_record(job, f"user:{actor.pk}", action="deleted")
        clip = getattr(job, "clip", None)
        if clip is not None:
            names = [
                f.name for f in (clip.video, clip.thumbnail, clip.spritesheet, clip.metadata) if f
            ]
            storage = clip.video.storage
            clip.delete()
            transaction.on_commit(lambda: [storage.delete(name) for name in names])
    signal_cancel(job.pk)


def clip_fingerprints_store(*, clip, hashes) -> int:
    """Indexes a clip's per-second PDQ hashes (flat, low-quality frames are left out)."""
    from generation.models import ClipFingerprint
    from generation.provenance.fingerprint import MIN_QUALITY, band_codes

    rows = ClipFingerprint.objects.bulk_create(
        [
            ClipFingerprint(
                clip=clip, second=h.second, hash=h.hash, quality=h.quality, bands=band_codes(h.hash)
            )
            for h in hashes
            if h.quality >= MIN_QUALITY
        ]
    )
    return len(rows)
