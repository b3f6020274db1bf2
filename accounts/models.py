from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from core.ids import uuid7

HANDLE_PATTERN = r"^[a-z0-9_](?:[a-z0-9_.]{1,28}[a-z0-9_])$"
handle_validator = RegexValidator(
    HANDLE_PATTERN,
    "A handle is 3-30 characters: lowercase letters, digits, '_' and '.', not starting or "
    "ending with '.'.",
    code="invalid_handle",
)


class AgeBand(models.TextChoices):
    ADULT = "adult", "Adult"
    TEEN = "teen", "Teen"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, handle: str, password: str | None = None, **fields) -> User:
        handle = User.normalize_handle(handle)
        email = fields.pop("email", None)
        user = self.model(
            handle=handle, email=self.normalize_email(email) if email else None, **fields
        )
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, handle: str, password: str | None = None, **fields) -> User:
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(handle, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person (or an operator's service account). The profile lives on the same row: every
    request reads it, and one row means no join and no N+1 on lists of people."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    handle = models.CharField(max_length=30, unique=True, validators=[handle_validator])
    email = models.EmailField(null=True, blank=True)
    display_name = models.CharField(max_length=60, blank=True)
    bio = models.CharField(max_length=300, blank=True)
    avatar = models.ImageField(upload_to="avatars/", blank=True)
    birth_date = models.DateField(
        null=True,
        blank=True,
        help_text="Unknown birth dates get the teen protections (fail safe).",
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "handle"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_unique_ci"),
        ]

    def __str__(self) -> str:
        return f"@{self.handle}"

    @staticmethod
    def normalize_handle(handle: str) -> str:
        return (handle or "").strip().lstrip("@").lower()

    def age_on(self, day: dt.date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    @property
    def age_band(self) -> str:
        age = self.age_on(timezone.localdate())
        # Safety: an unknown age is treated as a teen, so teen protections fail closed.
        if age is None or age < settings.ADULT_AGE:
            return AgeBand.TEEN
        return AgeBand.ADULT

    @property
    def is_teen(self) -> bool:
        return self.age_band == AgeBand.TEEN


class Follow(models.Model):
    follower = models.ForeignKey(User, on_delete=models.CASCADE, related_name="following_edges")
    followee = models.ForeignKey(User, on_delete=models.CASCADE, related_name="follower_edges")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "followee"], name="follow_unique"),
            models.CheckConstraint(
                condition=~models.Q(follower=models.F("followee")), name="follow_not_self"
            ),
        ]
        indexes = [models.Index(fields=["followee", "-id"], name="follow_followee_idx")]

    def __str__(self) -> str:
        return f"{self.follower_id} follows {self.followee_id}"


class Block(models.Model):
    """``blocker`` blocked ``blocked``. A block hides both ways, everywhere."""

    blocker = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocks_made")
    blocked = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocks_received")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="block_unique"),
            models.CheckConstraint(
                condition=~models.Q(blocker=models.F("blocked")), name="block_not_self"
            ),
        ]
        indexes = [models.Index(fields=["blocked", "blocker"], name="block_reverse_idx")]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"


class ApiKey(models.Model):
    """An API key, sent as ``Authorization: Bearer mk_<prefix>_<secret>``.

    Only a SHA-256 of the whole key is stored: keys are 256-bit random, so a slow hash buys
    nothing and a fast one keeps authentication cheap. The prefix finds the row.
    """

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"mk_{self.prefix}_… ({self.user_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Notification(models.Model):
    """A durable notification; the same event is also pushed to the user's WebSocket group."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=50)
    actor = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-id"], name="notification_user_idx")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}"


# --- Parental controls ------------------------------------------------------------------------

PARENTAL_LINK_PREFIX = "plink_"
PARENTAL_INVITATION_PREFIX = "pinv_"
# How many parents one teen account may have linked at once.
PARENTAL_MAX_PARENTS = 2
# How long an invitation code can be accepted, and how many unused ones a parent may hold.
PARENTAL_INVITATION_TTL = dt.timedelta(hours=48)
PARENTAL_MAX_OPEN_INVITATIONS = 5
# A watch-time limit is shorter than a day (a whole day is no limit at all).
PARENTAL_MAX_DAILY_MINUTES = 24 * 60 - 1


class CameoAudienceCap(models.TextChoices):
    """The widest audience a parent lets their teen's cameo have, narrowest first. The same
    words as cameo.models.Audience (accounts cannot import cameo); ``everyone`` is missing
    because a teen's cameo can never be open to everyone anyway."""

    ONLY_ME = "only_me"
    APPROVED = "approved"
    MUTUALS = "mutuals"


CAMEO_AUDIENCE_ORDER = [
    CameoAudienceCap.ONLY_ME,
    CameoAudienceCap.APPROVED,
    CameoAudienceCap.MUTUALS,
]


class ParentalInvitation(models.Model):
    """A single-use code a parent creates and hands to their teen, who accepts it while signed
    in: both have acted, so the link exists by both people's consent. Only a SHA-256 of the
    code is stored (the code is random and short-lived; a fast hash keeps lookups cheap)."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    parent = models.ForeignKey(User, on_delete=models.CASCADE, related_name="parental_invitations")
    code_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["parent", "-id"], name="parental_invitation_parent_idx")]

    def __str__(self) -> str:
        return f"invitation {self.id} by {self.parent_id}"

    @property
    def public_id(self) -> str:
        return f"{PARENTAL_INVITATION_PREFIX}{self.id.hex}"


class ParentalLink(models.Model):
    """A parent linked to a teen account, and the controls that parent set for it. With two
    parents linked, the stricter setting of each control applies (see
    accounts.selectors.parental_controls_for). Controls apply only while the account is a teen
    account; unlinking takes the parent, or the teen once they are an adult."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    parent = models.ForeignKey(User, on_delete=models.CASCADE, related_name="teen_links")
    teen = models.ForeignKey(User, on_delete=models.CASCADE, related_name="parent_links")
    invitation = models.OneToOneField(
        ParentalInvitation, on_delete=models.SET_NULL, null=True, blank=True, related_name="link"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=200, blank=True)
    # The controls. Defaults are the platform's teen defaults, except remixing, which a link
    # turns off until the parent allows it.
    personalization_off = models.BooleanField(default=False)
    daily_feed_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    daily_feed_items = models.PositiveSmallIntegerField(null=True, blank=True)
    strangers_can_comment = models.BooleanField(default=True)
    cameo_audience_max = models.CharField(
        max_length=10, choices=CameoAudienceCap.choices, blank=True
    )
    allow_remix = models.BooleanField(default=False)
    controls_updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "teen"],
                condition=models.Q(revoked_at__isnull=True),
                name="parental_link_one_active_per_pair",
            ),
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("teen")), name="parental_link_not_self"
            ),
            models.CheckConstraint(
                condition=models.Q(daily_feed_minutes__isnull=True)
                | models.Q(
                    daily_feed_minutes__gte=1, daily_feed_minutes__lte=PARENTAL_MAX_DAILY_MINUTES
                ),
                name="parental_link_minutes_range",
            ),
            models.CheckConstraint(
                condition=models.Q(daily_feed_items__isnull=True)
                | models.Q(daily_feed_items__gte=1),
                name="parental_link_items_positive",
            ),
        ]
        indexes = [
            models.Index(
                fields=["teen"],
                name="parental_link_active_teen_idx",
                condition=models.Q(revoked_at__isnull=True),
            ),
            models.Index(fields=["parent", "-id"], name="parental_link_parent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.parent_id} parent of {self.teen_id}"

    @property
    def public_id(self) -> str:
        return f"{PARENTAL_LINK_PREFIX}{self.id.hex}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ParentalEvent(models.Model):
    """Append-only record of every parental-link and control change: who, what, when, and each
    control's old and new value. A database trigger (migration 0003) refuses UPDATE and
    DELETE. Ids, not foreign keys: the record outlives the link and the accounts."""

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now)
    link_id = models.UUIDField(null=True, blank=True)
    invitation_id = models.UUIDField(null=True, blank=True)
    parent_id = models.UUIDField()
    teen_id = models.UUIDField(null=True, blank=True)
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=40)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["link_id", "id"], name="parental_event_link_idx"),
            models.Index(fields=["teen_id", "id"], name="parental_event_teen_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action}"
