"""Trust and safety: staff roles, cases and the reports that feed them, screening decisions,
hash banks, the rights-holder registry, strikes, suspensions, appeals and the audit log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.ids import uuid7


def prefixed(prefix: str, value: uuid.UUID) -> str:
    return f"{prefix}_{value.hex}"


def parse_prefixed(prefix: str, value: str) -> uuid.UUID | None:
    raw = value[len(prefix) + 1 :] if value.startswith(f"{prefix}_") else value
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


class Role(models.TextChoices):
    MODERATOR = "moderator"
    SENIOR = "senior_moderator"
    ADMIN = "admin"


# Higher ranks may do everything lower ones may.
ROLE_RANK = {Role.MODERATOR: 1, Role.SENIOR: 2, Role.ADMIN: 3}


class StaffRole(models.Model):
    """A user's trust-and-safety role. Everybody without a row is an ordinary user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderation_role"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    granted_at = models.DateTimeField(default=timezone.now)
    granted_by = models.CharField(max_length=200, default="system")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.role}"


class Category(models.TextChoices):
    MINORS = "minors", "Sexual content involving minors"
    SEXUAL = "sexual", "Sexual content"
    VIOLENCE = "violence", "Graphic violence"
    HATE = "hate", "Hate"
    SELF_HARM = "self_harm", "Self-harm"
    HARASSMENT = "harassment", "Harassment"
    REAL_PERSON = "real_person", "Real person without a cameo"
    RIGHTS = "rights", "Protected character or brand"
    CAMEO_RESTRICTION = "cameo_restriction", "A cameo's own restriction"
    CAMEO_MISUSE = "cameo_misuse", "Cameo misuse"
    HASH_MATCH = "hash_match", "Matches a banned media hash"
    SPAM = "spam", "Spam"
    OTHER = "other", "Other"


class SubjectType(models.TextChoices):
    CLIP = "clip"
    COMMENT = "comment"
    USER = "user"
    CAMEO = "cameo"
    JOB = "job"
    APPEAL = "appeal"


class CaseStatus(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"


class Case(models.Model):
    """One subject under review in one queue, with everything said about it."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    queue = models.CharField(max_length=40, db_index=True)
    subject_type = models.CharField(max_length=20)
    subject_id = models.CharField(max_length=100)
    category = models.CharField(max_length=30)
    severity = models.PositiveSmallIntegerField(help_text="1 (low) to 5 (critical)")
    summary = models.CharField(max_length=500)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    # Ordering inputs: reach is bucketed by order of magnitude so that trust and age still
    # decide between cases of similar reach.
    reach = models.PositiveIntegerField(default=0)
    reach_band = models.PositiveSmallIntegerField(default=0)
    reporter_trust = models.FloatField(default=0.0)
    report_count = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(default=timezone.now)
    sla_due_at = models.DateTimeField()
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_cases",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    decision = models.CharField(max_length=30, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            # One open case per subject and queue; further reports join it.
            models.UniqueConstraint(
                fields=["queue", "subject_type", "subject_id"],
                condition=models.Q(status="open"),
                name="case_one_open_per_subject",
            ),
            models.CheckConstraint(
                condition=models.Q(severity__gte=1, severity__lte=5), name="case_severity_range"
            ),
        ]
        indexes = [
            models.Index(
                fields=["queue", "-severity", "-reach_band", "-reporter_trust", "opened_at"],
                name="case_queue_priority_idx",
                condition=models.Q(status="open"),
            ),
            models.Index(fields=["subject_type", "subject_id"], name="case_subject_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.queue} {self.subject_type}:{self.subject_id}"

    @property
    def public_id(self) -> str:
        return prefixed("case", self.id)

    @property
    def is_open(self) -> bool:
        return self.status == CaseStatus.OPEN


class ReportStatus(models.TextChoices):
    OPEN = "open"
    ACTIONED = "actioned"  # staff acted on the subject
    DISMISSED = "dismissed"  # reviewed; no violation found


class Report(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderation_reports"
    )
    subject_type = models.CharField(max_length=20, choices=SubjectType.choices)
    subject_id = models.CharField(max_length=100)
    reason = models.CharField(max_length=30, choices=Category.choices)
    detail = models.TextField(blank=True)
    time_start = models.FloatField(null=True, blank=True)
    time_end = models.FloatField(null=True, blank=True)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="reports")
    status = models.CharField(max_length=10, choices=ReportStatus.choices, default="open")
    outcome = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["reporter", "-id"], name="report_reporter_idx")]

    def __str__(self) -> str:
        return f"{self.public_id} {self.reason}"

    @property
    def public_id(self) -> str:
        return prefixed("report", self.id)


class CaseNote(models.Model):
    """A moderator-only note on a case."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"note on {self.case_id}"


class AuditEntry(models.Model):
    """Append-only record of every staff and automatic action. A database trigger (migration
    0002) refuses UPDATE and DELETE, so not even a bug or a shell session can rewrite it."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=40)
    subject_type = models.CharField(max_length=20)
    subject_id = models.CharField(max_length=100)
    case = models.ForeignKey(
        Case, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="audit"
    )
    reason_code = models.CharField(max_length=60, blank=True)
    reason = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="audit_subject_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.subject_id}"


class Verdict(models.TextChoices):
    ALLOW = "allow"
    HOLD = "hold"
    BLOCK = "block"


class ScreeningDecision(models.Model):
    """What the automatic screening decided about one item, and why (every category's score,
    threshold and what matched)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    subject_type = models.CharField(max_length=20)
    subject_id = models.CharField(max_length=100, blank=True)
    # A reference, not a foreign key: refusals are written on a connection of their own (see
    # moderation.screening.decision_record), which must not wait on the request's rows.
    user_ref = models.CharField(max_length=200, blank=True)
    phase = models.CharField(max_length=20)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    reasons = models.JSONField(default=list)
    context = models.JSONField(default=dict, blank=True)
    classifier_version = models.CharField(max_length=40)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["subject_type", "subject_id"], name="screening_subject_idx")
        ]

    def __str__(self) -> str:
        return f"{self.phase} {self.subject_type}:{self.subject_id} {self.verdict}"


class HashBank(models.Model):
    """A named list of banned PDQ hashes (HMA-style): a clip with a frame within ``threshold``
    bits of any of them is blocked or held, as ``action`` says."""

    name = models.SlugField(max_length=60, unique=True)
    description = models.CharField(max_length=300, blank=True)
    enabled = models.BooleanField(default=True)
    threshold = models.PositiveSmallIntegerField(default=31)
    action = models.CharField(
        max_length=10, choices=[(Verdict.BLOCK, "block"), (Verdict.HOLD, "hold")], default="block"
    )
    category = models.CharField(max_length=30, choices=Category.choices, default="hash_match")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class BankedHash(models.Model):
    bank = models.ForeignKey(HashBank, on_delete=models.CASCADE, related_name="hashes")
    hash = models.BinaryField(max_length=32)
    note = models.CharField(max_length=200, blank=True)
    added_by = models.CharField(max_length=200)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bank", "hash"], name="banked_hash_unique")]

    def __str__(self) -> str:
        return f"{self.bank_id}:{bytes(self.hash).hex()[:12]}"


class RightsHolder(models.Model):
    name = models.CharField(max_length=120, unique=True)
    contact = models.EmailField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class ProtectedTerm(models.Model):
    """A character, brand or term a rights holder opted in to protect: prompts naming it are
    refused."""

    class Kind(models.TextChoices):
        CHARACTER = "character"
        BRAND = "brand"
        TERM = "term"

    holder = models.ForeignKey(RightsHolder, on_delete=models.CASCADE, related_name="terms")
    term = models.CharField(max_length=120)
    normalized = models.CharField(max_length=120, db_index=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CHARACTER)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["holder", "normalized"], name="protected_term_unique")
        ]

    def __str__(self) -> str:
        return self.term


class Strike(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderation_strikes"
    )
    case = models.ForeignKey(
        Case, on_delete=models.SET_NULL, null=True, blank=True, related_name="strikes"
    )
    category = models.CharField(max_length=30)
    reason = models.CharField(max_length=300)
    issued_by = models.CharField(max_length=200)
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "expires_at"], name="strike_user_idx")]

    def __str__(self) -> str:
        return f"strike {self.user_id} {self.category}"


class Suspension(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderation_suspensions"
    )
    reason = models.CharField(max_length=300)
    issued_by = models.CharField(max_length=200)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True, help_text="null: permanent")
    lifted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"suspension {self.user_id}"


class AppealStatus(models.TextChoices):
    OPEN = "open"
    UPHELD = "upheld"  # the original decision stands
    OVERTURNED = "overturned"  # the decision is reversed and its effect undone


class Appeal(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="appeals")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderation_appeals"
    )
    status = models.CharField(max_length=12, choices=AppealStatus.choices, default="open")
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case", "user"],
                condition=models.Q(status="open"),
                name="appeal_one_open_per_case",
            )
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def public_id(self) -> str:
        return prefixed("appeal", self.id)


class AppealMessage(models.Model):
    appeal = models.ForeignKey(Appeal, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    from_staff = models.BooleanField(default=False)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"message on {self.appeal_id}"


class Takedown(models.Model):
    """A temporary takedown: the clip comes back at ``until`` unless a later decision says
    otherwise (the periodic task ``moderation.expire`` restores it)."""

    clip = models.ForeignKey("generation.Clip", on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="takedowns")
    until = models.DateTimeField()
    restored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["until"], name="takedown_due_idx", condition=models.Q(restored_at=None)
            )
        ]

    def __str__(self) -> str:
        return f"takedown {self.clip_id} until {self.until:%Y-%m-%d}"
