"""Verification of a video or image against this server's records: "did this come from here, from
which clip and job, from which parent, with whose consent — and is it still what was signed?"

Three independent witnesses, so stripping one does not silence the others:

1. the **C2PA manifest**, when the file still carries one: its validation state (``trusted``
   under the configured anchors, ``valid`` but signed by someone else, ``invalid`` = tampered or
   badly signed), the job, parent chain and consent entries it claims;
2. the **invisible watermark** in the pixels: its payload names exactly one clip (unique in
   the database);
3. the **fingerprints** (per-second PDQ): which stored clips look like this video.

The verdict combines them. The named clip's stored fingerprints are compared with the file's to
tell a faithful copy (re-encoded, resized, trimmed) from pixels altered after signing.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from generation.models import Clip, ClipFingerprint, GenerationJob, public_id
from generation.pipeline import signing_credentials
from generation.provenance.c2pa_sign import SOFT_BINDING_ASSERTION
from generation.provenance.fingerprint import MATCH_DISTANCE, MIN_QUALITY, SecondHash, distance
from generation.provenance.inspect import Limits, shared_inspector, sniff
from generation.provenance.watermark import ALG as WATERMARK_ALG
from generation.selectors import clip_by_job_ref, clip_visible_to, clips_matching

LINEAGE_LIMIT = 50  # ancestors listed in a report; the remix API pages further


def inspection_limits() -> Limits:
    return Limits(
        max_pixels=settings.PROVENANCE_VERIFY_MAX_PIXELS,
        max_seconds=settings.PROVENANCE_VERIFY_MAX_SECONDS,
        memory_mb=settings.PROVENANCE_VERIFY_MEMORY_MB,
        cpu_seconds=settings.PROVENANCE_VERIFY_CPU_SECONDS,
        timeout_s=settings.PROVENANCE_VERIFY_TIMEOUT_S,
    )


def reader_start() -> None:
    """Starts this process's media reader ahead of the first verification (web servers call
    it at start-up when ``PROVENANCE_VERIFY_PREWARM`` is on), so that request is not the one
    to pay for starting it."""
    shared_inspector().start(inspection_limits())


def media_verify(*, path: str | Path, viewer=None) -> dict[str, Any]:
    """The verification report for the file at ``path`` (untrusted). Raises
    ``inspect.UnsupportedMedia`` for a type it does not read and ``inspect.InspectionFailed``
    for a file it could not read within the limits."""
    with open(path, "rb") as handle:
        mime = sniff(handle.read(16))
    anchors = signing_credentials().trust_anchors_pem
    findings = shared_inspector().inspect(
        str(path),
        mime,
        key=settings.GENERATION_WATERMARK_KEY.encode(),
        anchors_pem=anchors.decode() if anchors else None,
        limits=inspection_limits(),
    )
    return report_build(findings, viewer=viewer)


def report_build(findings: dict[str, Any], *, viewer=None) -> dict[str, Any]:
    """The report from what the file said about itself (``inspect.inspect_file``)."""
    manifest = _manifest_section(findings["manifest"])
    payload_hex = findings["watermark"]["payload"]
    marked = (
        Clip.objects.select_related("job", "user")
        .filter(watermark=bytes.fromhex(payload_hex))
        .first()
        if payload_hex
        else None
    )
    hashes = [
        SecondHash(h["second"], bytes.fromhex(h["hash"]), h["q"]) for h in findings["fingerprints"]
    ]
    matches = clips_matching(hashes=hashes, limit=5) if hashes else []
    # One query for every matched clip (the report names them all, the best may be the clip).
    matched = Clip.objects.select_related("job", "user").in_bulk([m["clip_id"] for m in matches])
    # Only a manifest this server's anchors vouch for may name one of its clips.
    by_manifest = (
        clip_by_job_ref(manifest.get("job_id")) if manifest["state"] == "trusted" else None
    )
    clip = marked or by_manifest or (matched.get(matches[0]["clip_id"]) if matches else None)
    pixels = _pixel_check(clip, hashes) if clip is not None else None
    verdict, reasons = _verdict(manifest, marked, by_manifest, clip, pixels, matches)
    return {
        "object": "provenance.verification",
        "verdict": verdict,
        "reasons": reasons,
        "media": {**findings["media"], "mime": findings["mime"]},
        "manifest": manifest,
        "watermark": {
            "found": payload_hex is not None,
            "payload": payload_hex,
            "alg": WATERMARK_ALG,
            "confidence": findings["watermark"]["confidence"],
            "crop": findings["watermark"]["crop"],
            "clip": _clip_ref(marked, viewer) if marked else None,
        },
        "fingerprint": {
            "seconds_hashed": len(hashes),
            "matches": [
                {**m, "clip": _clip_ref(matched[m["clip_id"]], viewer)}
                for m in matches
                if m["clip_id"] in matched
            ],
        },
        "clip": _clip_ref(clip, viewer) if clip else None,
        "pixels": pixels,
        "lineage": _lineage(clip, viewer) if clip else [],
        "consent": _consent(clip) if clip else [],
        "timing_s": findings.get("inspect_s"),
    }


# --- sections --------------------------------------------------------------------------------


def _manifest_section(found: dict[str, Any]) -> dict[str, Any]:
    state = found.get("state", "absent")
    if state in ("absent", "unreadable"):
        return {"present": False, "state": "absent"}
    active = found.get("active_manifest") or {}
    manifests = found.get("manifests") or {}
    job = found.get("job") or {}
    binding = next(
        (
            a.get("data")
            for a in active.get("assertions", [])
            if a.get("label") == SOFT_BINDING_ASSERTION
        ),
        None,
    )
    payload = None
    if binding and binding.get("alg") == WATERMARK_ALG and binding.get("blocks"):
        payload = base64.b64decode(binding["blocks"][0].get("value", "")).hex()
    signature = active.get("signature_info") or {}
    return {
        "present": True,
        # trusted: chains to a configured anchor; valid: intact, signed by another; invalid:
        # the bytes or the claim changed after signing, or the signature is bad.
        "state": state,
        "failures": found.get("failures", []),
        "error": found.get("error"),
        "signer": signature.get("common_name") or signature.get("issuer"),
        "signed_at": signature.get("time"),
        "claim_generator": (active.get("claim_generator_info") or [{}])[0].get("name"),
        "actions": [a.get("action") for a in found.get("actions", [])],
        "digital_source_type": next(
            (
                a.get("digitalSourceType")
                for a in found.get("actions", [])
                if a.get("digitalSourceType")
            ),
            None,
        ),
        "job_id": job.get("job_id"),
        "params_hash": (job.get("params_hash") or {}).get("value"),
        "parent_clip_id": job.get("parent_clip_id"),
        "ingredient_chain": _ingredient_chain(found.get("active_manifest_label"), manifests),
        "ingredients": _direct_ingredients(found.get("active_manifest_label"), manifests),
        "consent": (found.get("consent") or {}).get("entries", []),
        "soft_binding": {"alg": binding.get("alg"), "payload": payload} if binding else None,
    }


JOB_LABEL = "org.montage.job"


def _manifest_job_id(manifest: dict[str, Any]) -> str | None:
    job = next(
        (a.get("data") for a in manifest.get("assertions", []) if a.get("label") == JOB_LABEL),
        None,
    )
    return (job or {}).get("job_id")


def _direct_ingredients(label: str | None, manifests: dict[str, Any]) -> list[dict[str, Any]]:
    """The clips the active manifest was made from, in order: the parentOf ingredient and, for
    a stitch, the componentOf ones, each with the job id its own manifest claims."""
    manifest = manifests.get(label) if label else None
    if not manifest:
        return []
    return [
        {
            "relationship": ingredient.get("relationship"),
            "job_id": _manifest_job_id(manifests.get(ingredient.get("active_manifest"), {})),
        }
        for ingredient in manifest.get("ingredients", [])
        if ingredient.get("relationship") in ("parentOf", "componentOf")
    ]


def _ingredient_chain(label: str | None, manifests: dict[str, Any]) -> list[str]:
    """Job ids along the parentOf ingredients of the manifest store, newest first."""
    chain: list[str] = []
    seen = set()
    while label and label not in seen and label in manifests:
        seen.add(label)
        manifest = manifests[label]
        chain.append(_manifest_job_id(manifest))
        parent = next(
            (i for i in manifest.get("ingredients", []) if i.get("relationship") == "parentOf"),
            None,
        )
        label = parent.get("active_manifest") if parent else None
    return chain


def _clip_ref(clip: Clip, viewer) -> dict[str, Any]:
    """What anyone holding a copy may learn (the ids and dates the manifest itself carries),
    plus the creator and state for a viewer allowed to see the clip."""
    ref: dict[str, Any] = {
        "id": public_id(clip.job_id),
        "created_at": clip.created_at.isoformat(),
        "removed": clip.removed_at is not None,
    }
    if viewer is not None and clip_visible_to(clip=clip, user=viewer):
        ref.update(creator=clip.user.handle, audience=clip.audience)
    return ref


def _pixel_check(clip: Clip, hashes: list[SecondHash]) -> dict[str, Any] | None:
    """Do the file's frames look like the clip's? Per-second PDQ distances at the best time
    offset (a trimmed copy starts later): faithful copies stay well under PDQ's match
    distance; altered pixels do not."""
    stored = {
        fp.second: bytes(fp.hash)
        for fp in ClipFingerprint.objects.filter(clip=clip).only("second", "hash")
    }
    usable = [h for h in hashes if h.quality >= MIN_QUALITY]
    if not stored or not usable:
        return None
    best = None
    for offset in range(-max(stored), max(stored) + 1):
        pairs = [
            distance(h.hash, stored[h.second + offset])
            for h in usable
            if h.second + offset in stored
        ]
        if len(pairs) < max(1, min(len(usable), len(stored)) // 2):
            continue
        # The alignment that compares the most seconds, then the closest (lower median, so a
        # few altered seconds do not pull the copy off its true offset).
        score = (-len(pairs), sorted(pairs)[(len(pairs) - 1) // 2])
        if best is None or score < best[0]:
            best = (score, offset, pairs)
    if best is None:
        return {"compared_seconds": 0, "altered": None}
    (_, median), offset, pairs = best
    altered_seconds = sum(d > MATCH_DISTANCE for d in pairs)
    return {
        "compared_seconds": len(pairs),
        "offset_s": offset,
        "median_distance": median,
        "max_distance": max(pairs),
        "altered_seconds": altered_seconds,
        "altered": altered_seconds > 0,
    }


def _lineage(clip: Clip, viewer) -> list[dict[str, Any]]:
    """Ancestors of the clip's job, parent first, through the jobs' parent links."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE up(id, parent_id, depth) AS (
                SELECT id, parent_id, 0 FROM generation_generationjob WHERE id = %s
                UNION ALL
                SELECT j.id, j.parent_id, up.depth + 1
                FROM generation_generationjob j JOIN up ON j.id = up.parent_id
                WHERE up.depth < %s
            )
            SELECT id FROM up WHERE depth > 0 ORDER BY depth
            """,
            [clip.job_id, LINEAGE_LIMIT],
        )
        ids = [row[0] for row in cursor.fetchall()]
    jobs = GenerationJob.objects.in_bulk(ids)
    clips = {c.job_id: c for c in Clip.objects.select_related("job", "user").filter(job_id__in=ids)}
    out = []
    for job_id in ids:
        job = jobs[job_id]
        parent_clip = clips.get(job_id)
        entry = {"id": public_id(job_id), "kind": job.kind}
        if parent_clip is not None:
            entry.update(_clip_ref(parent_clip, viewer))
        out.append(entry)
    return out


def _consent(clip: Clip) -> list[dict[str, Any]]:
    return list(clip.job.annotations.get("consent", []))


def _verdict(manifest, marked, by_manifest, clip, pixels, matches) -> tuple[str, list[str]]:
    """``authentic``: an intact manifest of ours, and the pixels agree; ``identified``: no
    usable manifest, but watermark or fingerprint name a clip and the pixels agree;
    ``tampered``: a manifest that no longer validates, pixels that differ from the clip they
    name, or a watermark and manifest naming different clips; ``unknown``: nothing of ours."""
    reasons = []
    state = manifest["state"]
    tampered = False
    if state == "invalid":
        tampered = True
        reasons.append("The C2PA manifest does not validate: the file changed after signing.")
    elif state == "trusted":
        reasons.append("The C2PA manifest is intact and signed under a trusted certificate.")
    elif state == "valid":
        reasons.append("The C2PA manifest is intact but not signed under a trusted certificate.")
    else:
        reasons.append("The file carries no C2PA manifest.")
    if marked is not None:
        reasons.append(f"The invisible watermark names {public_id(marked.job_id)}.")
        if by_manifest is not None and by_manifest.pk != marked.pk:
            tampered = True
            reasons.append("The watermark and the manifest name different clips.")
    elif clip is not None and by_manifest is None:
        reasons.append(f"The fingerprints match {public_id(clip.job_id)}.")
    if pixels and pixels.get("altered"):
        tampered = True
        reasons.append(
            f"{pixels['altered_seconds']} of {pixels['compared_seconds']} seconds differ from the "
            "clip's fingerprints: the pixels were altered."
        )
    if tampered:
        return "tampered", reasons
    if clip is None:
        reasons.append("No watermark or fingerprint of a clip made here was found.")
        return "unknown", reasons
    if state == "trusted" and by_manifest is not None:
        return "authentic", reasons
    return "identified", reasons
