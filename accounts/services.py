"""Writes for accounts: registration, profile, social graph, API keys, notifications."""

from __future__ import annotations

import datetime as dt
import io
import secrets

from django.conf import settings
from django.contrib.auth.password_validation import (
    UserAttributeSimilarityValidator,
    get_default_password_validators,
    validate_password,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.authentication import API_KEY_PREFIX, hash_api_key
from accounts.models import ApiKey, Block, Follow, Notification, User, handle_validator
from accounts.selectors import is_blocked_either_way
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound, PayloadTooLarge
from core.realtime import publish_to_user


def _age(birth_date: dt.date) -> int:
    today = timezone.localdate()
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


def _password_validators() -> list:
    # Django's similarity check looks at username/first_name/last_name/email by default; this
    # model's identifying fields are the handle and display name.
    return [
        *get_default_password_validators(),
        UserAttributeSimilarityValidator(user_attributes=("handle", "display_name", "email")),
    ]


def _check_birth_date(birth_date: dt.date) -> None:
    if birth_date > timezone.localdate():
        raise InvalidRequest(
            "birth_date is in the future.", code="invalid_birth_date", param="birth_date"
        )
    if _age(birth_date) < settings.MINIMUM_AGE:
        raise Forbidden(
            f"You must be at least {settings.MINIMUM_AGE} to use Montage.",
            code="under_minimum_age",
            param="birth_date",
        )


def _validated_handle(handle: str) -> str:
    handle = User.normalize_handle(handle)
    try:
        handle_validator(handle)
    except DjangoValidationError as exc:
        raise InvalidRequest(exc.messages[0], code="invalid_handle", param="handle") from exc
    return handle


def user_create(
    *,
    handle: str,
    birth_date: dt.date | None = None,
    display_name: str = "",
    password: str | None = None,
    is_staff: bool = False,
) -> User:
    """An account made by an operator (management commands), not by self-registration: no
    password policy, and without a password it can only use API keys. Without a birth date
    the account gets the teen protections."""
    handle = _validated_handle(handle)
    if User.objects.filter(handle=handle).exists():
        raise Conflict("That handle is taken.", code="handle_taken", param="handle")
    return User.objects.create_user(
        handle,
        password,
        display_name=display_name or handle,
        birth_date=birth_date,
        is_staff=is_staff,
    )


def user_register(
    *,
    handle: str,
    password: str,
    birth_date: dt.date,
    email: str | None = None,
    display_name: str = "",
) -> User:
    handle = _validated_handle(handle)
    _check_birth_date(birth_date)
    candidate = User(handle=handle, email=email, display_name=display_name)
    try:
        validate_password(password, user=candidate, password_validators=_password_validators())
    except DjangoValidationError as exc:
        raise InvalidRequest(
            " ".join(exc.messages), code="weak_password", param="password"
        ) from exc
    if User.objects.filter(handle=handle).exists():
        raise Conflict("That handle is taken.", code="handle_taken", param="handle")
    if email and User.objects.filter(email__iexact=email).exists():
        raise Conflict("That email is already registered.", code="email_taken", param="email")
    try:
        with transaction.atomic():
            return User.objects.create_user(
                handle,
                password,
                email=email or None,
                display_name=display_name or handle,
                birth_date=birth_date,
            )
    except IntegrityError as exc:  # lost a race with an identical registration
        raise Conflict(
            "That handle or email is taken.", code="handle_taken", param="handle"
        ) from exc


PROFILE_FIELDS = ("display_name", "bio", "birth_date")


def user_update_profile(*, user: User, **changes) -> User:
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown fields: {', '.join(sorted(unknown))}", code="unknown_field")
    if "birth_date" in changes:
        if user.birth_date is not None:
            # A birth date, once set, is not self-editable: else a teen could opt out of the
            # teen protections. Support staff correct it with proof.
            raise Forbidden(
                "Your birth date can only be changed by support.",
                code="birth_date_locked",
                param="birth_date",
            )
        _check_birth_date(changes["birth_date"])
    for field, value in changes.items():
        setattr(user, field, value)
    user.save(update_fields=list(changes))
    return user


AVATAR_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}
AVATAR_MAX_SIDE = 1024
# Decoding is width x height x 4 bytes whatever the file size: a small, highly compressed file
# can claim dimensions that would exhaust a web worker's memory.
AVATAR_MAX_PIXELS = 40_000_000


def _invalid_image(message: str = "The avatar is not a readable image.") -> InvalidRequest:
    return InvalidRequest(message, code="invalid_image", param="avatar")


def user_set_avatar(*, user: User, upload: UploadedFile) -> User:
    """Stores a re-encoded copy of the upload, at most AVATAR_MAX_SIDE on a side. Re-encoding
    drops EXIF and other metadata (a phone photo's GPS position would otherwise be public)
    and keeps only the first frame of an animation."""
    if upload.size > settings.MAX_AVATAR_BYTES:
        raise PayloadTooLarge(
            f"An avatar may be at most {settings.MAX_AVATAR_BYTES} bytes.", param="avatar"
        )
    try:
        with Image.open(upload) as image:
            if image.format not in AVATAR_FORMATS:
                raise _invalid_image("Avatars must be PNG, JPEG, WebP or GIF.")
            if image.width * image.height > AVATAR_MAX_PIXELS:
                raise _invalid_image(
                    f"The avatar may have at most {AVATAR_MAX_PIXELS} pixels "
                    f"(it has {image.width}x{image.height})."
                )
            has_alpha = image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info
            picture = ImageOps.exif_transpose(image).convert("RGBA" if has_alpha else "RGB")
            picture.thumbnail((AVATAR_MAX_SIDE, AVATAR_MAX_SIDE))
            encoded = io.BytesIO()
            if has_alpha:
                picture.save(encoded, format="PNG", optimize=True)
                extension = "png"
            else:
                picture.save(encoded, format="JPEG", quality=90)
                extension = "jpg"
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        # OSError covers truncated and corrupt data, found only while decoding; ValueError an
        # unusual pixel mode that cannot be converted.
        raise _invalid_image() from exc
    old = user.avatar.name if user.avatar else None
    name = f"{user.pk}-{secrets.token_hex(4)}.{extension}"
    user.avatar.save(name, ContentFile(encoded.getvalue()), save=False)
    user.save(update_fields=["avatar"])
    if old:
        transaction.on_commit(lambda: user.avatar.storage.delete(old))
    return user


def user_follow(*, follower: User, followee: User) -> Follow:
    if follower.pk == followee.pk:
        raise InvalidRequest("You cannot follow yourself.", code="cannot_follow_self")
    with transaction.atomic():
        # The pair is locked (in key order) so a block committed meanwhile cannot leave a
        # follow behind it.
        list(
            User.objects.select_for_update()
            .filter(pk__in=[follower.pk, followee.pk])
            .order_by("pk")
        )
        if is_blocked_either_way(follower, followee):
            # Safety: a block hides both ways; answer as if the account did not exist.
            raise NotFound("No such user.", code="user_not_found")
        follow, created = Follow.objects.get_or_create(follower=follower, followee=followee)
        if created:
            notification_create(
                user=followee, kind="follow", actor=follower, data={"handle": follower.handle}
            )
    return follow


def user_unfollow(*, follower: User, followee: User) -> bool:
    deleted, _ = Follow.objects.filter(follower=follower, followee=followee).delete()
    return bool(deleted)


def user_block(*, blocker: User, blocked: User) -> Block:
    if blocker.pk == blocked.pk:
        raise InvalidRequest("You cannot block yourself.", code="cannot_block_self")
    with transaction.atomic():
        # Same pair lock as user_follow: a follow racing this block waits, then sees it.
        list(
            User.objects.select_for_update().filter(pk__in=[blocker.pk, blocked.pk]).order_by("pk")
        )
        block, _ = Block.objects.get_or_create(blocker=blocker, blocked=blocked)
        # A block severs the graph both ways.
        Follow.objects.filter(
            Q(follower=blocker, followee=blocked) | Q(follower=blocked, followee=blocker)
        ).delete()
    return block


def user_unblock(*, blocker: User, blocked: User) -> bool:
    deleted, _ = Block.objects.filter(blocker=blocker, blocked=blocked).delete()
    return bool(deleted)


def api_key_create(*, user: User, name: str = "") -> tuple[ApiKey, str]:
    """Returns the key row and the raw key. The raw key is never stored: show it once."""
    prefix = secrets.token_hex(6)
    raw = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(user=user, name=name, prefix=prefix, key_hash=hash_api_key(raw))
    return key, raw


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def notification_create(
    *, user: User, kind: str, data: dict, actor: User | None = None
) -> Notification:
    """Stores a notification and, once committed, pushes it to the user's sockets."""
    notification = Notification.objects.create(user=user, kind=kind, data=data, actor=actor)
    payload = {
        "id": str(notification.id),
        "kind": kind,
        "actor": actor.handle if actor else None,
        "data": data,
        "created_at": notification.created_at.isoformat(),
    }
    transaction.on_commit(lambda: publish_to_user(user.pk, "notification", payload))
    return notification


def notifications_mark_read(*, user: User, ids: list | None = None) -> int:
    queryset = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        queryset = queryset.filter(pk__in=ids)
    return queryset.update(read_at=timezone.now())
