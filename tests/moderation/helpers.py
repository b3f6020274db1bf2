"""Builders for the moderation tests: staff with roles, completed clips as the worker writes
them (media files included, so signed links serve real bytes)."""

from __future__ import annotations

import os

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from generation.models import Clip, ClipAudience, GenerationJob, JobKind, JobStage, JobStatus
from moderation.models import Role, StaffRole
from tests.factories import UserFactory

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    b"\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00"
    b"\x00IEND\xaeB`\x82"
)


def staff(role: str = Role.MODERATOR, **fields):
    user = UserFactory(is_staff=True, **fields)
    StaffRole.objects.create(user=user, role=role)
    return user


def make_clip(
    owner,
    *,
    parent: Clip | None = None,
    audience: str = ClipAudience.PUBLIC,
    prompt: str = "a red ball bouncing",
    annotations: dict | None = None,
    video: bytes = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64,
    **fields,
) -> Clip:
    job = GenerationJob.objects.create(
        user=owner,
        kind=JobKind.REMIX if parent else JobKind.CREATE,
        prompt=prompt,
        model="sora-2",
        engine="previs",
        seconds=1,
        size="512x512",
        seed=1,
        params={},
        params_hash="0" * 64,
        parent=parent.job if parent else None,
        annotations=annotations or {},
        status=JobStatus.COMPLETED,
        stage=JobStage.DONE,
    )
    name = default_storage.save(f"clips/{job.id.hex}/1/video.mp4", ContentFile(video))
    thumb = default_storage.save(f"clips/{job.id.hex}/1/thumbnail.png", ContentFile(PNG))
    return Clip.objects.create(
        job=job,
        user=owner,
        video=name,
        thumbnail=thumb,
        spritesheet=thumb,
        metadata=thumb,
        duration_s=4,
        width=512,
        height=512,
        bytes=len(video),
        sha256="0" * 64,
        audience=audience,
        manifest={"state": "trusted", "actions": [{"action": "c2pa.created"}], "signer": "CN=t"},
        watermark=os.urandom(8),
        **fields,
    )


def textured_frames(seed: int, count: int = 48, size: int = 128) -> np.ndarray:
    """Frames with enough detail for PDQ (flat frames are not hashed)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
    frame = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))
    return np.repeat(frame[None], count, axis=0)
