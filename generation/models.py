"""Generation jobs, their attempts and state log, and the clips they produce."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone

from core.ids import uuid7

PUBLIC_PREFIX = "video_"


def public_id(value: uuid.UUID) -> str:
    return f"{PUBLIC_PREFIX}{value.hex}"


def parse_public_id(value: str) -> uuid.UUID | None:
    """``video_<hex>`` or a plain UUID -> UUID; None when it is neither."""
    raw = value[len(PUBLIC_PREFIX) :] if value.startswith(PUBLIC_PREFIX) else value
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"  # refused by a gate (consent, moderation, lineage) before completion


TERMINAL = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.BLOCKED}


class JobStage(models.TextChoices):
    QUEUED = "queued"
    RENDERING = "rendering"  # gpu task owns it
    RENDERED = "rendered"  # frames + audio stored; waiting for the cpu task
    POSTPROCESSING = "postprocessing"  # cpu task owns it
    DONE = "done"


class JobKind(models.TextChoices):
    CREATE = "create"
    REMIX = "remix"
    EXTEND = "extend"
    EDIT = "edit"
    # Several clips joined in order (the first is ``parent``; all are in ``params["parents"]``).
    STITCH = "stitch"


class GenerationJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="generation_jobs"
    )
    kind = models.CharField(max_length=10, choices=JobKind.choices, default=JobKind.CREATE)
    prompt = models.TextField()
    model = models.CharField(max_length=64, help_text="The model name the client asked for.")
    engine = models.CharField(max_length=32, help_text="The installed engine that runs it.")
    engine_version = models.CharField(max_length=32, blank=True)
    seconds = models.PositiveSmallIntegerField()
    size = models.CharField(max_length=16)
    seed = models.BigIntegerField()
    priority = models.PositiveSmallIntegerField(default=5)
    params = models.JSONField(default=dict, help_text="The normalised request, as rendered.")
    params_hash = models.CharField(max_length=64)
    plan = models.JSONField(null=True, blank=True, help_text="The scene plan the engine derived.")
    input_reference = models.FileField(upload_to="references/", blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children"
    )
    variant_group = models.UUIDField(null=True, blank=True, db_index=True)
    variant_index = models.PositiveSmallIntegerField(default=0)
    # Annotations written by gates (cameo references, consent-ledger ids, screening results).
    annotations = models.JSONField(default=dict, blank=True)

    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    stage = models.CharField(max_length=16, choices=JobStage.choices, default=JobStage.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    error_param = models.CharField(max_length=64, blank=True)
    # A job failed for the system's fault does not count against the user's quota.
    counts_against_quota = models.BooleanField(default=True)

    # The lease: which worker process owns the current stage, until when. A redelivered task
    # for a job whose lease is live is dropped; an expired lease means the owner died.
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    intermediate = models.CharField(max_length=300, blank=True, help_text="Storage name of render")

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-id"], name="job_user_idx"),
            models.Index(
                fields=["stage", "lease_expires_at"],
                name="job_active_lease_idx",
                condition=~models.Q(stage="done"),
            ),
        ]

    def __str__(self) -> str:
        return f"{public_id(self.id)} ({self.status})"

    @property
    def public_id(self) -> str:
        return public_id(self.id)

    @property
    def parent_ids(self) -> list[uuid.UUID]:
        """Every job this one derives from, in order: ``parent`` first, then, for a stitch,
        the other clips it joins."""
        listed = [parse_public_id(ref) for ref in (self.params or {}).get("parents") or []]
        ids = [pk for pk in listed if pk is not None]
        if self.parent_id is not None and self.parent_id not in ids:
            ids.insert(0, self.parent_id)
        return ids

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])


class JobAttempt(models.Model):
    """One worker's go at one stage of a job: who, when, and how it ended."""

    class Outcome(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        ERROR = "error"
        CANCELLED = "cancelled"
        LOST = "lost"  # the worker died; another attempt took over

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="attempts")
    stage = models.CharField(max_length=16, choices=JobStage.choices)
    worker = models.CharField(max_length=200)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["job", "id"], name="attempt_job_idx")]

    def __str__(self) -> str:
        return f"{self.job_id} {self.stage} {self.outcome}"


class JobEvent(models.Model):
    """Append-only log of a job's state changes (who/what/when)."""

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=200, help_text="user:<id>, worker:<name> or system")
    status = models.CharField(max_length=16, choices=JobStatus.choices)
    stage = models.CharField(max_length=16, choices=JobStage.choices)
    detail = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.job_id} -> {self.status}/{self.stage}"


class ClipAudience(models.TextChoices):
    ONLY_ME = "only_me"  # a draft, or a post its creator keeps to themself
    FOLLOWERS = "followers"
    PUBLIC = "public"


class Clip(models.Model):
    """The signed, watermarked output of exactly one job: a private draft until published.

    Publication and safety state live here, below every app that reads it, so that feeds,
    lineage views, cameo appearances and media URLs all apply the same rule
    (generation.selectors.clip_visible_to).
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # Safety: one job, one clip — the unique key is what makes a redelivered task harmless.
    job = models.OneToOneField(GenerationJob, on_delete=models.CASCADE, related_name="clip")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="clips"
    )
    video = models.FileField(upload_to="clips/")
    thumbnail = models.FileField(upload_to="clips/")
    spritesheet = models.FileField(upload_to="clips/")
    metadata = models.FileField(upload_to="clips/", help_text="camera + events JSON")
    duration_s = models.FloatField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    manifest = models.JSONField(default=dict, help_text="Summary of the signed C2PA manifest")
    # The invisible watermark's payload: unique, so a decoded payload names exactly one clip.
    watermark = models.BinaryField(max_length=8, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)
    removal_reason = models.CharField(max_length=200, blank=True)
    # Who may see it: set when its creator publishes it (feed); a draft is ``only_me``.
    audience = models.CharField(
        max_length=16, choices=ClipAudience.choices, default=ClipAudience.ONLY_ME
    )
    published_at = models.DateTimeField(null=True, blank=True)
    # The creator's per-post setting: may others remix it (remix rules).
    allow_remix = models.BooleanField(default=True)
    # Moderation state: held for review (shown to nobody but its creator and staff until a
    # decision), age-restricted (never shown to teen accounts), and labels shown with it.
    held_at = models.DateTimeField(null=True, blank=True)
    hold_reason = models.CharField(max_length=200, blank=True)
    age_restricted = models.BooleanField(default=False)
    labels = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-id"], name="clip_user_idx")]
        constraints = [
            # Safety: whatever code path writes a clip row, the database refuses one whose
            # manifest did not read back as valid or that carries no watermark payload.
            models.CheckConstraint(
                # has_key too: a missing key makes the IN test NULL, which a CHECK lets pass.
                condition=models.Q(watermark__isnull=False)
                & models.Q(manifest__has_key="state")
                & models.Q(manifest__state__in=["valid", "trusted"]),
                name="clip_signed_and_watermarked",
            )
        ]

    def __str__(self) -> str:
        return f"clip {self.id} of {public_id(self.job_id)}"


class ClipFingerprint(models.Model):
    """The PDQ hash of one second of a clip (generation.provenance.fingerprint).

    ``bands`` holds the hash's sixteen 16-bit bands, each as ``band << 16 | value``; a GIN index
    on it answers "which stored hashes share a band value with these probes" without a scan
    (multi-index hashing), and a generated ``hash_bits bit(256)`` column (migration 0006) lets
    Postgres compute exact Hamming distances on the candidates it finds.
    """

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="fingerprints")
    second = models.PositiveIntegerField()
    hash = models.BinaryField(max_length=32)
    quality = models.PositiveSmallIntegerField()
    bands = ArrayField(models.IntegerField(), default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clip", "second"], name="fingerprint_clip_second")
        ]
        indexes = [GinIndex(fields=["bands"], name="fingerprint_bands_gin")]

    def __str__(self) -> str:
        return f"{self.clip_id}@{self.second}s"
