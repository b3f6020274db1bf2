"""The consent gate (settings.GENERATION_GATES): no clip shows a cameo unless its owner
permitted that user, both when the job is created and when it completes."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from cameo import permissions, services
from cameo.models import Appearance, Cameo, CameoStatus, parse_public_id
from generation.gates import COMPLETE, CREATE, GateRefused
from generation.models import GenerationJob


def _lock_shared(ids) -> dict:
    """The cameos with ``ids`` under a shared row lock, held to the end of the transaction:
    a consent change (which locks the row exclusively) waits for this job's check to commit,
    or this check waits for the change and then reads it."""
    ids = sorted({pk for pk in ids if pk is not None})
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM cameo_cameo WHERE id = ANY(%s) ORDER BY id FOR SHARE", [ids])
    return {c.pk: c for c in Cameo.objects.select_related("owner").filter(pk__in=ids)}


def _unavailable(handle: str) -> GateRefused:
    # Safety: the same answer whether the cameo does not exist, is hidden from this user, is
    # not verified, or is simply not theirs to use.
    return GateRefused(
        "cameo_unavailable",
        f"You cannot use @{handle} in a video.",
        status=403,
        param="prompt",
    )


def _parent_refs(job) -> list[dict]:
    """The cameos every parent shows (a stitch has several), each marked with the parent job
    it comes from (``parent_job``)."""
    parent_ids = job.parent_ids
    if not parent_ids:
        return []
    if parent_ids == [job.parent_id] and job.parent is not None:
        parents = [job.parent]
    else:
        found = GenerationJob.objects.in_bulk(parent_ids)
        parents = [found[pk] for pk in parent_ids if pk in found]
    refs: list[dict] = []
    for parent in parents:
        own = [
            {**ref, "parent_job": parent.pk} for ref in (parent.annotations or {}).get("cameos", [])
        ]
        named = {ref.get("handle") for ref in own}
        # A parent made before the gate was installed names its cameos only in its parameters.
        own += [
            {"handle": h, "parent_job": parent.pk}
            for h in (parent.params or {}).get("cameos") or []
            if h not in named
        ]
        refs += own
    return refs


def _resolve(job, parent_refs: list[dict]) -> list[tuple[Cameo, str]]:
    handles = [h.lower() for h in (job.params or {}).get("cameos") or []]
    if not handles and not parent_refs:
        return []
    by_handle = {
        c.handle: c.pk
        for c in Cameo.objects.filter(handle__in=handles, status=CameoStatus.VERIFIED)
    }
    parent_ids = [parse_public_id(ref.get("cameo_id") or "") for ref in parent_refs]
    parent_handles = [ref["handle"] for ref in parent_refs if not ref.get("cameo_id")]
    by_handle.update(
        {
            c.handle: c.pk
            for c in Cameo.objects.filter(handle__in=parent_handles, status=CameoStatus.VERIFIED)
        }
    )
    locked = _lock_shared([*by_handle.values(), *parent_ids])
    wanted: dict = {}
    for handle in handles:
        cameo = locked.get(by_handle.get(handle))
        if cameo is None or not permissions.can_use(cameo, job.user):
            raise _unavailable(handle)
        wanted.setdefault(cameo.pk, (cameo, "prompt"))
    for ref, pk in zip(parent_refs, parent_ids, strict=True):
        cameo = locked.get(pk) if pk else locked.get(by_handle.get(ref["handle"]))
        removed = (
            cameo is not None
            and Appearance.objects.filter(
                cameo=cameo, job_id=ref["parent_job"], removed_at__isnull=False
            ).exists()
        )
        # Safety: a remix, extension or edit must never launder a cameo its maker may not use.
        if cameo is None or removed or not permissions.can_use(cameo, job.user):
            raise GateRefused(
                "cameo_unavailable",
                "The video this builds on shows a cameo you may not use.",
                status=403,
                param="video",
            )
        wanted.setdefault(cameo.pk, (cameo, "parent"))
    return list(wanted.values())


def _check_count(job, parent_refs: list[dict]) -> None:
    handles = set((job.params or {}).get("cameos") or [])
    handles |= {ref.get("handle") for ref in parent_refs}
    limit = settings.CAMEO_MAX_PER_CLIP
    if len(handles) > limit:
        raise GateRefused(
            "too_many_cameos",
            f"A video may show at most {limit} cameos.",
            status=400,
            param="prompt",
        )


def _at_create(job) -> None:
    parent_refs = _parent_refs(job)
    _check_count(job, parent_refs)
    resolved = _resolve(job, parent_refs)
    if not resolved:
        return
    keys: dict[str, Cameo] = {}
    for cameo, _ in resolved:
        other = keys.setdefault(cameo.engine_key, cameo)
        if other.pk != cameo.pk:
            raise GateRefused(
                "ambiguous_cameos",
                f"@{other.handle} and @{cameo.handle} cannot appear in the same video.",
                status=400,
                param="prompt",
            )
    refs, images, consent = [], {}, []
    for cameo, via in resolved:
        _, entry = services.use_record(cameo=cameo, job=job, via=via)
        refs.append(
            {
                "handle": cameo.handle,
                "engine_key": cameo.engine_key,
                "cameo_id": cameo.public_id,
                "owner_id": str(cameo.owner_id),
                "kind": cameo.kind,
                "instructions": cameo.instructions,
                "restrictions": list(cameo.restrictions),
                "ledger_entry": entry.entry_hash,
            }
        )
        if cameo.reference_image:
            images[cameo.engine_key] = cameo.reference_image
        consent.append(
            {
                "ledger_entry_id": entry.entry_hash,
                "cameo_id": cameo.public_id,
                "details": {
                    "owner": cameo.owner.handle,
                    "action": "use",
                    "at": entry.at.isoformat(),
                },
            }
        )
    job.annotations = {
        **(job.annotations or {}),
        "cameos": refs,
        "cameo_images": images,
        "consent": consent,
    }


def _at_complete(job) -> None:
    refs = (job.annotations or {}).get("cameos") or []
    annotated = {ref.get("handle") for ref in refs}
    withdrawn = GateRefused(
        services.CONSENT_WITHDRAWN,
        "Consent for a cameo in this video was withdrawn before it finished.",
        status=403,
    )
    # Safety: a job naming cameos that the create check never resolved cannot complete.
    if any(h not in annotated for h in (job.params or {}).get("cameos") or []):
        raise withdrawn
    if job.parent_ids and _parent_refs(job) and not refs:
        raise withdrawn
    if not refs:
        return
    ids = [parse_public_id(ref.get("cameo_id") or "") for ref in refs]
    locked = _lock_shared(ids)
    live = set(
        Appearance.objects.filter(
            job_id=job.pk, cameo_id__in=[pk for pk in ids if pk], removed_at__isnull=True
        ).values_list("cameo_id", flat=True)
    )
    for pk in ids:
        cameo = locked.get(pk)
        if cameo is None or pk not in live or not permissions.can_use(cameo, job.user):
            raise withdrawn


def consent_gate(job, phase: str) -> None:
    if phase == CREATE:
        _at_create(job)
    elif phase == COMPLETE:
        _at_complete(job)


consent_gate.handles_cameos = True
