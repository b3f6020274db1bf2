"""Reads for cameos, permission-checked. A cameo someone may not see answers exactly like a
missing one, so its existence is never revealed."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from cameo import permissions
from cameo.models import (
    LIVE_STATUSES,
    Appearance,
    Cameo,
    CameoGrant,
    CameoKind,
    CameoStatus,
    Challenge,
    LedgerEntry,
    RecordingCheck,
    parse_public_id,
)
from core.errors import NotFound


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw or "")
    except ValueError:
        return None


def _not_found(ref: str, param: str = "cameo_id") -> NotFound:
    return NotFound(f"No cameo found with id {ref!r}.", code="cameo_not_found", param=param)


def _cameo_by_ref(ref: str) -> Cameo | None:
    pk = parse_public_id(ref)
    if pk is None:
        return None
    return Cameo.objects.select_related("owner").filter(pk=pk).first()


def cameo_get_for_viewer(*, cameo_id: str, user) -> Cameo:
    cameo = _cameo_by_ref(cameo_id)
    # Safety: not visible and not existing are the same answer.
    if cameo is None or not permissions.can_see(cameo, user):
        raise _not_found(cameo_id)
    return cameo


def cameo_get_for_owner(*, cameo_id: str, user, include_deleted: bool = False) -> Cameo:
    """The caller's own cameo. Anyone else gets the answer a missing id gets — even someone
    who may see it (the owner's tools are not theirs). A deleted cameo is found only with
    ``include_deleted``: its ledger outlives it."""
    cameo = _cameo_by_ref(cameo_id)
    if cameo is None or not permissions.is_owner(cameo, user):
        raise _not_found(cameo_id)
    if cameo.status == CameoStatus.DELETED and not include_deleted:
        raise _not_found(cameo_id)
    return cameo


def character_get_for_viewer(*, character_id: str, user) -> Cameo:
    cameo = _cameo_by_ref(character_id)
    if cameo is None or cameo.kind != CameoKind.CHARACTER or not permissions.can_see(cameo, user):
        raise NotFound(
            f"No character found with id {character_id!r}.",
            code="character_not_found",
            param="character_id",
        )
    return cameo


def cameo_by_handle(handle: str) -> Cameo | None:
    """The live cameo named ``handle`` (any status that reserves it), unchecked."""
    return (
        Cameo.objects.select_related("owner")
        .filter(handle=(handle or "").strip().lstrip("@").lower(), status__in=LIVE_STATUSES)
        .first()
    )


def cameo_get_by_handle_for_viewer(*, handle: str, user) -> Cameo:
    cameo = cameo_by_handle(handle)
    if cameo is None or not permissions.can_see(cameo, user):
        raise NotFound(f"No cameo found with handle {handle!r}.", code="cameo_not_found")
    return cameo


def cameos_of(*, owner) -> QuerySet:
    return Cameo.objects.filter(owner=owner).exclude(status=CameoStatus.DELETED)


def grants_of(*, cameo: Cameo) -> QuerySet:
    return CameoGrant.objects.filter(cameo=cameo).select_related("grantee")


def grant_get_for_owner(*, cameo: Cameo, grant_id: str) -> CameoGrant:
    pk = _uuid(grant_id)
    grant = (
        CameoGrant.objects.select_related("grantee").filter(cameo=cameo, pk=pk).first()
        if pk
        else None
    )
    if grant is None:
        raise NotFound(f"No grant found with id {grant_id!r}.", code="grant_not_found")
    return grant


def appearances_of(*, cameo: Cameo) -> QuerySet:
    """Every job and clip with the cameo, other people's drafts included (the owner's view)."""
    return Appearance.objects.filter(cameo=cameo).select_related("job", "job__clip", "user")


def appearance_get_for_owner(*, cameo: Cameo, appearance_id: str) -> Appearance:
    pk = _uuid((appearance_id or "").removeprefix("appearance_"))
    appearance = appearances_of(cameo=cameo).filter(pk=pk).first() if pk else None
    if appearance is None:
        raise NotFound(
            f"No appearance found with id {appearance_id!r}.", code="appearance_not_found"
        )
    return appearance


def ledger_of(*, cameo: Cameo) -> QuerySet:
    return LedgerEntry.objects.filter(cameo=cameo)


def challenge_get_for_user(*, challenge_id: str, user) -> Challenge:
    pk = _uuid((challenge_id or "").removeprefix("chal_"))
    challenge = Challenge.objects.filter(pk=pk, user=user).first() if pk else None
    if challenge is None:
        raise NotFound(
            f"No challenge found with id {challenge_id!r}.",
            code="challenge_not_found",
            param="challenge_id",
        )
    return challenge


def in_flight_appearances(*, cameo: Cameo) -> QuerySet:
    from generation.models import TERMINAL

    return (
        Appearance.objects.filter(cameo=cameo, removed_at__isnull=True)
        .exclude(job__status__in=TERMINAL)
        .select_related("job", "user")
    )


def checks_stalled(*, waited) -> list[RecordingCheck]:
    """Recordings whose verification has not finished ``waited`` after they arrived."""
    from django.utils import timezone

    return list(
        RecordingCheck.objects.filter(
            finished_at__isnull=True,
            cameo__status=CameoStatus.PENDING,
            created_at__lt=timezone.now() - waited,
        ).only("id")
    )
