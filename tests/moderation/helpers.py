"""Builders for the moderation tests: staff with roles, completed clips as the worker writes
them (media files included, so signed links serve real bytes)."""

from __future__ import annotations

import numpy as np

from generation.models import Clip, ClipAudience, JobKind
from moderation.models import Role, StaffRole
from tests.factories import UserFactory, completed_clip

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
    # A PNG stands in for the thumbnail, the spritesheet and the metadata.
    files = {
        "video.mp4": video,
        "thumbnail.png": PNG,
        "spritesheet.png": PNG,
        "metadata.png": PNG,
    }
    return completed_clip(
        owner,
        parent=parent,
        kind=JobKind.REMIX,
        audience=audience,
        prompt=prompt,
        annotations=annotations,
        files=files,
        duration_s=4,
        manifest={"state": "trusted", "actions": [{"action": "c2pa.created"}], "signer": "CN=t"},
        **fields,
    )


def textured_frames(seed: int, count: int = 48, size: int = 128) -> np.ndarray:
    """Frames with enough detail for PDQ (flat frames are not hashed)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
    frame = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))
    return np.repeat(frame[None], count, axis=0)
