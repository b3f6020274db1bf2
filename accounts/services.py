"""Writes for accounts: registration, profile, social graph, API keys, notifications, parental
links and controls."""

from __future__ import annotations

import datetime as dt
import hashlib
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

from accounts import signals
from accounts.authentication import API_KEY_PREFIX, hash_api_key
from accounts.models import (
    CAMEO_AUDIENCE_ORDER,
    PARENTAL_INVITATION_TTL,
    PARENTAL_MAX_DAILY_MINUTES,
    PARENTAL_MAX_OPEN_INVITATIONS,
    PARENTAL_MAX_PARENTS,
    ApiKey,
    Block,
    Follow,
    Notification,
    ParentalEvent,
    ParentalInvitation,
    ParentalLink,
    User,
    handle_validator,
)
from accounts.selectors import CONTROL_FIELDS, PLATFORM_CONTROLS, is_blocked_either_way
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


# --- Parental links and controls ---------------------------------------------------------------
#
# The consent flow: the parent (an adult account) creates an invitation code and gives it to
# their teen, who accepts it while signed in to the teen account. The parent acted by creating
# the code, the teen by accepting it; nothing links two accounts without both. Either side
# sees the link and its controls; only the parent changes the controls; unlinking takes the
# parent, or the teen once they are an adult. Every step is a ParentalEvent.

INVITATION_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
INVITATION_LENGTH = 12  # 60 bits


def _actor(user: User) -> str:
    return f"user:{user.pk}"


def normalize_invitation_code(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def hash_invitation_code(code: str) -> str:
    return hashlib.sha256(normalize_invitation_code(code).encode()).hexdigest()


def _parental_event(
    *,
    action: str,
    actor: str,
    parent_id,
    teen_id=None,
    link: ParentalLink | None = None,
    invitation: ParentalInvitation | None = None,
    detail: dict | None = None,
) -> ParentalEvent:
    return ParentalEvent.objects.create(
        action=action,
        actor=actor,
        parent_id=parent_id,
        teen_id=teen_id,
        link_id=link.pk if link is not None else None,
        invitation_id=invitation.pk if invitation is not None else None,
        detail=detail or {},
    )


def _require_adult_parent(user: User) -> None:
    if user.is_teen:
        # Safety: only an adult account (a known birth date, over the adult age) can be a parent.
        raise Forbidden(
            "Only adult accounts can link to a teen account as a parent.",
            code="parent_must_be_adult",
        )


def parental_invitation_create(*, parent: User) -> tuple[ParentalInvitation, str]:
    """A new single-use code for ``parent``'s teen to accept. Returns the row and the code; the
    code is never stored, so it is shown once."""
    _require_adult_parent(parent)
    now = timezone.now()
    with transaction.atomic():
        # Serialises a parent's concurrent requests, so the open-invitation cap holds.
        User.objects.select_for_update().filter(pk=parent.pk).first()
        open_count = ParentalInvitation.objects.filter(
            parent=parent, used_at__isnull=True, expires_at__gt=now
        ).count()
        if open_count >= PARENTAL_MAX_OPEN_INVITATIONS:
            raise Conflict(
                f"You have {open_count} unused invitation codes; use one or let them expire.",
                code="too_many_invitations",
            )
        code = "".join(secrets.choice(INVITATION_ALPHABET) for _ in range(INVITATION_LENGTH))
        invitation = ParentalInvitation.objects.create(
            parent=parent,
            code_hash=hash_invitation_code(code),
            created_at=now,
            expires_at=now + PARENTAL_INVITATION_TTL,
        )
        _parental_event(
            action="invitation_created",
            actor=_actor(parent),
            parent_id=parent.pk,
            invitation=invitation,
            detail={"expires_at": invitation.expires_at.isoformat()},
        )
    shown = "-".join(code[i : i + 4] for i in range(0, INVITATION_LENGTH, 4))
    return invitation, shown


def _controls_snapshot(link: ParentalLink) -> dict:
    snapshot = {name: getattr(link, name) for name in CONTROL_FIELDS}
    snapshot["cameo_audience_max"] = snapshot["cameo_audience_max"] or None
    return snapshot


def _from_platform(link: ParentalLink, *, made: bool) -> dict:
    """The controls of ``link`` that differ from having no parent linked, as a change: from
    the platform's values when the link is made, back to them when it is removed."""
    diff = {}
    for name, value in _controls_snapshot(link).items():
        platform = PLATFORM_CONTROLS[name]
        if value != platform:
            diff[name] = (
                {"from": platform, "to": value} if made else {"from": value, "to": platform}
            )
    return diff


def _controls_changed(link: ParentalLink, changes: dict, actor: str) -> None:
    """Tells the apps that enforce controls, inside the transaction of the change (cameo
    records it in the consent ledger with it)."""
    if changes:
        signals.parental_controls_changed.send(
            sender=ParentalLink,
            teen_id=link.teen_id,
            link_id=link.pk,
            changes=changes,
            actor=actor,
        )


def parental_link_accept(*, teen: User, code: str) -> ParentalLink:
    """The teen, signed in, accepts their parent's code: the link is made with the default
    controls, and the parent is told."""
    code_hash = hash_invitation_code(code)
    not_found = NotFound("No invitation has that code.", code="invitation_not_found", param="code")
    if len(normalize_invitation_code(code)) != INVITATION_LENGTH:
        raise not_found
    with transaction.atomic():
        invitation = (
            ParentalInvitation.objects.select_for_update(of=("self",))
            .select_related("parent")
            .filter(code_hash=code_hash)
            .first()
        )
        if invitation is None:
            raise not_found
        parent = invitation.parent
        if parent.pk == teen.pk:
            raise InvalidRequest(
                "That is your own invitation; give it to your teen.",
                code="cannot_link_self",
                param="code",
            )
        if is_blocked_either_way(parent, teen):
            # A block hides both ways: answer as if the code did not exist.
            raise not_found
        if invitation.used_at is not None:
            raise Conflict("That invitation has already been used.", code="invitation_used")
        if invitation.expires_at <= timezone.now():
            raise InvalidRequest(
                "That invitation has expired; ask for a new one.",
                code="invitation_expired",
                param="code",
            )
        if not teen.is_teen:
            raise Forbidden(
                "Only teen accounts can accept a parental invitation.", code="not_a_teen"
            )
        if not parent.is_active:
            raise not_found
        _require_adult_parent(parent)
        # The teen row is the lock that serialises accepting two codes at once, so the
        # parent cap below cannot be raced past.
        User.objects.select_for_update().filter(pk=teen.pk).first()
        active = ParentalLink.objects.filter(teen=teen, revoked_at__isnull=True)
        if active.filter(parent=parent).exists():
            raise Conflict("You are already linked to this parent.", code="already_linked")
        if active.count() >= PARENTAL_MAX_PARENTS:
            raise Conflict(
                f"A teen account can have at most {PARENTAL_MAX_PARENTS} linked parents.",
                code="parent_limit_reached",
            )
        now = timezone.now()
        link = ParentalLink.objects.create(
            parent=parent,
            teen=teen,
            invitation=invitation,
            created_at=now,
            controls_updated_at=now,
        )
        invitation.used_at, invitation.used_by = now, teen
        invitation.save(update_fields=["used_at", "used_by"])
        _parental_event(
            action="link_created",
            actor=_actor(teen),
            parent_id=parent.pk,
            teen_id=teen.pk,
            link=link,
            invitation=invitation,
            detail={"controls": _controls_snapshot(link)},
        )
        notification_create(
            user=parent,
            kind="parental.link_accepted",
            actor=teen,
            data={"link_id": link.public_id, "handle": teen.handle},
        )
        _controls_changed(link, _from_platform(link, made=True), _actor(teen))
    return link


def parental_link_revoke(*, link: ParentalLink, actor: User) -> ParentalLink:
    """Unlinks: by the parent at any time, by the teen only once they are an adult."""
    if actor.pk == link.teen_id:
        if actor.is_teen:
            # Safety: a teen cannot take their parent's controls off by themselves.
            raise Forbidden(
                "Only your parent can remove the link until you are an adult.",
                code="teen_cannot_unlink",
            )
    elif actor.pk != link.parent_id:
        raise NotFound("No such parental link.", code="parental_link_not_found", param="link_id")
    with transaction.atomic():
        link = (
            ParentalLink.objects.select_for_update(of=("self",))
            .select_related("parent", "teen")
            .get(pk=link.pk)
        )
        if link.revoked_at is not None:
            return link
        link.revoked_at = timezone.now()
        link.revoked_by = _actor(actor)
        link.save(update_fields=["revoked_at", "revoked_by"])
        _parental_event(
            action="link_revoked",
            actor=_actor(actor),
            parent_id=link.parent_id,
            teen_id=link.teen_id,
            link=link,
            detail={"by": "parent" if actor.pk == link.parent_id else "teen"},
        )
        other = link.teen if actor.pk == link.parent_id else link.parent
        notification_create(
            user=other,
            kind="parental.link_revoked",
            actor=actor,
            data={"link_id": link.public_id},
        )
        _controls_changed(link, _from_platform(link, made=False), _actor(actor))
    return link


def _check_controls(changes: dict) -> dict:
    """Validates a controls change. Each control may only be as strict as the platform's teen
    default or stricter: a parent cannot give a teen more than the platform does."""
    unknown = set(changes) - set(CONTROL_FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown fields: {', '.join(sorted(unknown))}", code="unknown_field")
    clean = {}
    for name in ("personalization_off", "strangers_can_comment", "allow_remix"):
        if name in changes:
            if not isinstance(changes[name], bool):
                raise InvalidRequest(f"{name} must be true or false.", code="invalid", param=name)
            clean[name] = changes[name]
    if "daily_feed_minutes" in changes:
        minutes = changes["daily_feed_minutes"]
        if minutes is not None and (
            isinstance(minutes, bool)
            or not isinstance(minutes, int)
            or not 1 <= minutes <= PARENTAL_MAX_DAILY_MINUTES
        ):
            raise InvalidRequest(
                f"daily_feed_minutes must be 1-{PARENTAL_MAX_DAILY_MINUTES}, or null for none.",
                code="invalid_limit",
                param="daily_feed_minutes",
            )
        clean["daily_feed_minutes"] = minutes
    if "daily_feed_items" in changes:
        items = changes["daily_feed_items"]
        platform = settings.FEED_TEEN_DAILY_ITEMS
        if items is not None and (
            isinstance(items, bool) or not isinstance(items, int) or items < 1
        ):
            raise InvalidRequest(
                "daily_feed_items must be a positive number, or null for the platform's.",
                code="invalid_limit",
                param="daily_feed_items",
            )
        if items is not None and items > platform:
            raise InvalidRequest(
                f"daily_feed_items can only be tighter than the platform's teen limit "
                f"({platform} a day).",
                code="limit_not_tighter",
                param="daily_feed_items",
            )
        clean["daily_feed_items"] = items
    if "cameo_audience_max" in changes:
        cap = changes["cameo_audience_max"]
        if cap is not None and cap not in CAMEO_AUDIENCE_ORDER:
            raise InvalidRequest(
                "cameo_audience_max must be one of only_me, approved, mutuals, or null.",
                code="invalid_choice",
                param="cameo_audience_max",
            )
        clean["cameo_audience_max"] = cap or ""
    return clean


def parental_controls_update(*, link: ParentalLink, actor: User, **changes) -> ParentalLink:
    """The parent changes the controls of one link; every changed control is recorded with
    its old and new value, and the teen is told."""
    clean = _check_controls(changes)
    if actor.pk != link.parent_id:
        if actor.pk == link.teen_id:
            raise Forbidden("Only your parent can change these controls.", code="parent_only")
        raise NotFound("No such parental link.", code="parental_link_not_found", param="link_id")
    with transaction.atomic():
        link = (
            ParentalLink.objects.select_for_update(of=("self",))
            .select_related("teen")
            .get(pk=link.pk)
        )
        if link.revoked_at is not None:
            raise Conflict("This link was removed.", code="link_revoked")
        diff = {}
        for name, value in clean.items():
            old = getattr(link, name)
            if old != value:
                diff[name] = {
                    "from": old if old != "" else None,
                    "to": value if value != "" else None,
                }
                setattr(link, name, value)
        if not diff:
            return link
        link.controls_updated_at = timezone.now()
        link.save(update_fields=[*clean, "controls_updated_at"])
        _parental_event(
            action="controls_changed",
            actor=_actor(actor),
            parent_id=link.parent_id,
            teen_id=link.teen_id,
            link=link,
            detail={"changes": diff},
        )
        notification_create(
            user=link.teen,
            kind="parental.controls_changed",
            actor=actor,
            data={"link_id": link.public_id, "changed": sorted(diff)},
        )
        _controls_changed(link, diff, _actor(actor))
    return link
