"""Post-processing of one rendered job into a stored, signed clip.

Order matters: the visible watermark goes into the frames before encoding, the manifest is
signed over the final encoded bytes, and the signed file is verified before anything is
stored. Nothing unsigned is ever written under a clip's name.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.module_loading import import_string
from PIL import Image

from generation.engines.base import Cancelled, RenderResult
from generation.faults import checkpoint
from generation.media.encode import EncodeSettings, encode_mp4
from generation.media.thumbs import make_spritesheet, make_thumbnail
from generation.media.watermark import apply_watermark, watermark_text
from generation.models import GenerationJob, JobKind
from generation.provenance.c2pa_sign import (
    ClipManifest,
    ConsentReference,
    Parent,
    SoftBinding,
    read_manifest,
    sign_mp4,
)
from generation.provenance.fingerprint import fingerprint_frames
from generation.provenance.keys import (
    SigningCredentials,
    callback_credentials,
    dev_credentials,
    load_credentials,
    with_extra_anchors,
)
from generation.provenance.watermark import ALG as WATERMARK_ALG
from generation.provenance.watermark import clip_payload
from generation.provenance.watermark import decode as decode_watermark
from generation.provenance.watermark import embed as embed_watermark

RELATIONS = {
    JobKind.REMIX: "remix",
    JobKind.EXTEND: "extension",
    JobKind.EDIT: "edit",
    JobKind.STITCH: "stitch",
}

_credentials_lock = threading.Lock()
_credentials: SigningCredentials | None = None


class SigningFailed(Exception):
    """The signed output did not verify: it must never become a clip."""


def signing_credentials() -> SigningCredentials:
    """Loaded once per process: production files when configured, else the development chain
    under the data directory (created on first use)."""
    global _credentials
    with _credentials_lock:
        if _credentials is None:
            anchors = settings.GENERATION_TRUST_ANCHORS or None
            if settings.GENERATION_SIGNING_CERT and settings.GENERATION_SIGNING_CALLBACK:
                credentials = callback_credentials(
                    settings.GENERATION_SIGNING_CERT,
                    import_string(settings.GENERATION_SIGNING_CALLBACK),
                    trust_anchors_path=anchors,
                )
            elif settings.GENERATION_SIGNING_CERT and settings.GENERATION_SIGNING_KEY:
                credentials = load_credentials(
                    settings.GENERATION_SIGNING_CERT,
                    settings.GENERATION_SIGNING_KEY,
                    trust_anchors_path=anchors,
                )
            else:
                credentials = dev_credentials(settings.GENERATION_SIGNING_DIR)
            extra = settings.GENERATION_TRUST_ANCHORS_EXTRA
            _credentials = with_extra_anchors(
                credentials, Path(extra).read_bytes() if extra else None
            )
        return _credentials


def signing_credentials_reset() -> None:
    """Forgets the loaded credentials (after a key rotation, and in tests)."""
    global _credentials
    with _credentials_lock:
        _credentials = None


@dataclass
class Produced:
    video: str
    thumbnail: str
    spritesheet: str
    metadata: str
    fingerprints: list
    watermark: bytes
    duration_s: float
    bytes: int
    sha256: str
    manifest: dict


def _watermark_phase(job: GenerationJob) -> float:
    # Each clip starts its watermark path at a different point, so no single crop window
    # removes it from every clip.
    return (job.id.int % 997) / 997


def _consent(job: GenerationJob) -> tuple[ConsentReference, ...]:
    """The consent-ledger entries that permitted each cameo in the clip, as the consent gate
    recorded them on the job when it was created."""
    return tuple(
        ConsentReference(
            ledger_entry_id=entry["ledger_entry_id"],
            cameo_id=entry["cameo_id"],
            details=entry.get("details") or {},
        )
        for entry in job.annotations.get("consent", [])
    )


def stored_rgb(name: str) -> np.ndarray:
    """The image stored under ``name`` as an RGB uint8 array (H, W, 3): a reference plate or a
    cameo's likeness, as the engine takes it."""
    with default_storage.open(name, "rb") as handle, Image.open(io.BytesIO(handle.read())) as im:
        return np.asarray(im.convert("RGB"))


def _ingredient(job: GenerationJob, parent_job: GenerationJob | None) -> Parent | None:
    clip = getattr(parent_job, "clip", None) if parent_job else None
    if clip is None:
        return None
    with clip.video.open("rb") as handle:
        data = handle.read()
    return Parent(
        source=data,
        title=f"{parent_job.public_id}.mp4",
        clip_id=parent_job.public_id,
        relation=RELATIONS.get(job.kind, "remix"),
    )


def _parent(job: GenerationJob) -> Parent | None:
    return _ingredient(job, job.parent)


def _components(job: GenerationJob) -> tuple[Parent, ...]:
    """A stitch's clips after the first, as signed ingredients (each with its own manifest)."""
    others = [pk for pk in job.parent_ids if pk != job.parent_id]
    if not others:
        return ()
    found = GenerationJob.objects.select_related("clip").in_bulk(others)
    return tuple(
        part for part in (_ingredient(job, found.get(pk)) for pk in others) if part is not None
    )


def scratch_dir(job_hex: str, attempt_pk: int) -> Path:
    """Local working files of one post-processing attempt (removed with a lost attempt)."""
    return Path(tempfile.gettempdir()) / "montage-post" / f"{job_hex}-{attempt_pk}"


def watermark_payload(job: GenerationJob) -> bytes:
    """The clip's watermark payload: a hash of the job id, re-drawn on the (~3e-8 at a million
    clips) chance that another clip already holds it."""
    from generation.models import Clip

    for attempt in range(8):
        payload = clip_payload(job.public_id, attempt=attempt)
        if not Clip.objects.filter(watermark=payload).exclude(job=job).exists():
            return payload
    raise RuntimeError("no free watermark payload")  # 8 collisions in a row: a broken hash


class WatermarkMissing(Exception):
    """The frames do not carry the clip's watermark: they must never become a clip."""


def watermark_check(frames: np.ndarray, payload: bytes) -> None:
    """Reads the payload back from a sample of the marked frames (every 8th, a quarter of the
    resolution: the mark lives on a 64x64 grid, so this keeps all of it) and raises
    :class:`WatermarkMissing` unless it is exactly ``payload``. ~10 ms for a 4 s 720p clip."""
    sample = frames[::8, ::4, ::4]
    found = decode_watermark(sample, settings.GENERATION_WATERMARK_KEY.encode()).payload
    if found != payload:
        raise WatermarkMissing(f"watermark reads back as {found!r}, not {payload!r}")


def produce(
    *,
    job: GenerationJob,
    result: RenderResult,
    prefix: str,
    scratch: Path,
    on_progress,
    should_stop,
):
    frames = result.frames if result.frames.flags.writeable else result.frames.copy()
    apply_watermark(
        frames,
        watermark_text(job.user.handle),
        fps=result.fps,
        phase=_watermark_phase(job),
        out=frames,
    )
    if should_stop():
        raise Cancelled
    payload = watermark_payload(job)
    # Safety: every clip carries the invisible mark that leads back to it without metadata.
    embed_watermark(frames, payload, settings.GENERATION_WATERMARK_KEY.encode())
    # Safety: the mark must read back before anything is encoded or signed.
    watermark_check(frames, payload)
    # Hashed from the frames as published (both marks drawn), so copies of the file match.
    fingerprints = fingerprint_frames(frames, result.fps)
    encode_settings = EncodeSettings(
        crf=settings.GENERATION_X264_CRF, preset=settings.GENERATION_X264_PRESET
    )
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        checkpoint("encode")
        raw = scratch / "raw.mp4"
        signed = scratch / "signed.mp4"
        encoded = encode_mp4(
            frames,
            result.audio,
            raw,
            fps=result.fps,
            sample_rate=result.sample_rate,
            settings=encode_settings,
        )
        on_progress(0.6)
        thumbnail = make_thumbnail(frames)
        spritesheet = make_spritesheet(frames)
        if should_stop():
            raise Cancelled
        credentials = signing_credentials()
        manifest = ClipManifest(
            job_id=job.public_id,
            title=f"{job.public_id}.mp4",
            params=job.params,
            engine_name=job.engine,
            engine_version=job.engine_version,
            parent=_parent(job),
            components=_components(job),
            consent=_consent(job),
            soft_bindings=(SoftBinding(alg=WATERMARK_ALG, value=payload),),
        )
        sign_mp4(raw, signed, clip=manifest, credentials=credentials)
        checkpoint("sign")
        # Safety: a clip is stored only once its own manifest reads back as intact.
        check = read_manifest(signed, credentials.trust_anchors_pem)
        if check["state"] not in ("valid", "trusted"):
            raise SigningFailed(f"signed output reads as {check['state']}: {check.get('failures')}")
        data = signed.read_bytes()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    on_progress(0.9)
    metadata = {
        "fps": result.fps,
        "sample_rate": result.sample_rate,
        "frames": int(frames.shape[0]),
        "camera": result.camera,
        "events": result.events,
        "plan": job.plan,
        "encode": {k: v for k, v in encoded.to_dict().items() if k != "path"},
    }
    names = {
        "video": f"{prefix}/video.mp4",
        "thumbnail": f"{prefix}/thumbnail.{_ext(thumbnail.content_type)}",
        "spritesheet": f"{prefix}/spritesheet.{_ext(spritesheet.content_type)}",
        "metadata": f"{prefix}/metadata.json",
    }
    blobs = {
        "video": data,
        "thumbnail": thumbnail.data,
        "spritesheet": spritesheet.data,
        "metadata": json.dumps(metadata, default=_json_default).encode(),
    }
    stored = {}
    checkpoint("store")
    for key, name in names.items():
        if default_storage.exists(name):
            default_storage.delete(name)
        stored[key] = default_storage.save(name, ContentFile(blobs[key]))
    return Produced(
        video=stored["video"],
        thumbnail=stored["thumbnail"],
        spritesheet=stored["spritesheet"],
        metadata=stored["metadata"],
        fingerprints=fingerprints,
        watermark=payload,
        duration_s=encoded.duration_s,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        manifest={
            "state": check["state"],
            "actions": check.get("actions"),
            "job": check.get("job"),
            "signer": credentials.leaf.subject.rfc4514_string(),
        },
    )


def _ext(content_type: str) -> str:
    return {"image/webp": "webp", "image/jpeg": "jpg", "image/png": "png"}[content_type]


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
