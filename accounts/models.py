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
