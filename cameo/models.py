"""Cameos: a person's (or a character's) likeness, who may use it, and the consent ledger."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.ids import uuid7

PUBLIC_PREFIX = "cameo_"
CHARACTER_PREFIX = "char_"


def public_id(value: uuid.UUID) -> str:
    return f"{PUBLIC_PREFIX}{value.hex}"


def parse_public_id(value: str) -> uuid.UUID | None:
    """``cameo_<hex>``, ``char_<hex>`` or a plain UUID -> UUID; None when it is none of them."""
    raw = value or ""
    for prefix in (PUBLIC_PREFIX, CHARACTER_PREFIX):
        if raw.startswith(prefix):
            raw = raw[len(prefix) :]
            break
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


class CameoKind(models.TextChoices):
    PERSON = "person"
    CHARACTER = "character"


class CameoStatus(models.TextChoices):
    PENDING = "pending"  # recording received, verification running
    NEEDS_REVIEW = "needs_review"  # the verifier could not decide; staff will
    VERIFIED = "verified"
    REJECTED = "rejected"
    REVOKED = "revoked"  # the owner withdrew it; nobody may use it again
    DELETED = "deleted"  # revoked and its reference media purged


# A handle stays reserved while its cameo may still become usable.
LIVE_STATUSES = (CameoStatus.PENDING, CameoStatus.NEEDS_REVIEW, CameoStatus.VERIFIED)


class Audience(models.TextChoices):
    ONLY_ME = "only_me"
    APPROVED = "approved"  # people the owner granted access
    MUTUALS = "mutuals"  # mutual followers, and people granted access
    EVERYONE = "everyone"


# Safety: a teen's likeness is never open to everyone, and starts closed.
TEEN_AUDIENCES = (Audience.ONLY_ME, Audience.APPROVED, Audience.MUTUALS)
ADULT_DEFAULT_AUDIENCE = Audience.MUTUALS
TEEN_DEFAULT_AUDIENCE = Audience.ONLY_ME


class RevocationPolicy(models.TextChoices):
    """What happens to existing clips when access is revoked or the cameo deleted. Drafts are
    taken down under either policy: they were never shared, and publishing one after the
    revocation would spread the likeness against the owner's current wish."""

    KEEP_PUBLISHED = "keep_published"
    TAKE_DOWN = "take_down"


class Cameo(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # PROTECT: the consent ledger references the cameo and can never be deleted.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cameos"
    )
    kind = models.CharField(max_length=10, choices=CameoKind.choices)
    handle = models.CharField(max_length=30)
    name = models.CharField(max_length=80, blank=True)
    status = models.CharField(
        max_length=16, choices=CameoStatus.choices, default=CameoStatus.PENDING
    )
    audience = models.CharField(max_length=10, choices=Audience.choices)
    instructions = models.CharField(max_length=500, blank=True)
    restrictions = models.JSONField(default=list, blank=True)
    revocation_policy = models.CharField(
        max_length=16, choices=RevocationPolicy.choices, default=RevocationPolicy.TAKE_DOWN
    )
    # Private media: storage names under settings.CAMEO_PRIVATE_PREFIX, never given a URL.
    source_media = models.CharField(max_length=300, blank=True)
    reference_image = models.CharField(max_length=300, blank=True)
    reference_frames = models.JSONField(default=list, blank=True)
    voice_sample = models.CharField(max_length=300, blank=True)
    verification = models.JSONField(default=dict, blank=True)
    rights_attested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["handle"],
                condition=models.Q(status__in=LIVE_STATUSES),
                name="cameo_live_handle_unique",
            ),
            models.UniqueConstraint(
                fields=["owner"],
                condition=models.Q(kind=CameoKind.PERSON, status__in=LIVE_STATUSES),
                name="cameo_one_live_person_per_owner",
            ),
        ]
        indexes = [models.Index(fields=["owner", "-id"], name="cameo_owner_idx")]

    def __str__(self) -> str:
        return f"@{self.handle} ({self.kind}, {self.status})"

    @property
    def public_id(self) -> str:
        return public_id(self.id)

    @property
    def character_id(self) -> str:
        return f"{CHARACTER_PREFIX}{self.id.hex}"

    @property
    def is_usable(self) -> bool:
        return self.status == CameoStatus.VERIFIED

    @property
    def engine_key(self) -> str:
        """How the engine names this likeness: the previs planner reads a mention as the
        lowercase token after ``@``, and its clause splitter ends a token at a ``.``."""
        return self.handle.split(".")[0]


class GrantStatus(models.TextChoices):
    PENDING = "pending"  # requested by the grantee, waiting for the owner
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"


class CameoGrant(models.Model):
    """One person's explicit access to a cameo, requested by them or given by the owner."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    cameo = models.ForeignKey(Cameo, on_delete=models.CASCADE, related_name="grants")
    grantee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cameo_grants"
    )
    status = models.CharField(max_length=10, choices=GrantStatus.choices)
    requested = models.BooleanField(default=False, help_text="Asked for by the grantee")
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["cameo", "grantee"],
                condition=models.Q(status__in=[GrantStatus.PENDING, GrantStatus.ACCEPTED]),
                name="cameo_grant_open_unique",
            )
        ]
        indexes = [models.Index(fields=["cameo", "-id"], name="cameo_grant_cameo_idx")]

    def __str__(self) -> str:
        return f"{self.grantee_id} -> {self.cameo_id} ({self.status})"


class Challenge(models.Model):
    """A single-use liveness challenge: what to say and how to turn, and until when."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cameo_challenges"
    )
    digits = models.JSONField()
    turns = models.JSONField()
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    cameo = models.ForeignKey(
        Cameo, on_delete=models.SET_NULL, null=True, blank=True, related_name="challenges"
    )

    def __str__(self) -> str:
        return f"challenge {self.id} for {self.user_id}"

    @property
    def public_id(self) -> str:
        return f"chal_{self.id.hex}"


class RecordingCheck(models.Model):
    """One verifier run over an uploaded recording; its fingerprint catches replays."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    cameo = models.ForeignKey(Cameo, on_delete=models.CASCADE, related_name="checks")
    challenge = models.OneToOneField(
        Challenge, on_delete=models.CASCADE, related_name="recording_check"
    )
    decision = models.CharField(max_length=10, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    fingerprint = models.BinaryField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"check of {self.cameo_id}: {self.decision or 'running'}"


class Appearance(models.Model):
    """A cameo in a job (and, once rendered, its clip) — drafts of other people included."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    cameo = models.ForeignKey(Cameo, on_delete=models.PROTECT, related_name="appearances")
    job = models.ForeignKey(
        "generation.GenerationJob", on_delete=models.CASCADE, related_name="cameo_appearances"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cameo_uses"
    )
    via = models.CharField(max_length=10, help_text="prompt, or parent for a derived job")
    ledger_entry = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cameo", "job"], name="appearance_cameo_job_unique")
        ]
        indexes = [models.Index(fields=["cameo", "-id"], name="appearance_cameo_idx")]

    def __str__(self) -> str:
        return f"{self.cameo_id} in {self.job_id}"

    @property
    def public_id(self) -> str:
        return f"appearance_{self.id.hex}"


class LedgerQuerySet(models.QuerySet):
    # Safety: consent records are append-only; bulk changes are refused here and, below the
    # application, by the database trigger installed in migration 0002.
    def update(self, **kwargs):
        raise LedgerImmutable("Consent ledger entries cannot be changed.")

    def delete(self):
        raise LedgerImmutable("Consent ledger entries cannot be deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise LedgerImmutable("Consent ledger entries cannot be changed.")


class LedgerImmutable(Exception):
    pass


class LedgerEntry(models.Model):
    """One signed, hash-chained consent record. Each cameo has its own chain (``seq`` 1, 2,
    ...), so the owner's ledger is verifiable on its own and cameos append concurrently."""

    id = models.BigAutoField(primary_key=True)
    cameo = models.ForeignKey(Cameo, on_delete=models.PROTECT, related_name="ledger")
    seq = models.PositiveIntegerField()
    actor = models.CharField(max_length=100)
    action = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)
    signature = models.CharField(max_length=200)
    key_id = models.CharField(max_length=32)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cameo", "seq"], name="ledger_cameo_seq_unique")
        ]

    def __str__(self) -> str:
        return f"{self.cameo_id}#{self.seq} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerImmutable("Consent ledger entries cannot be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerImmutable("Consent ledger entries cannot be deleted.")
