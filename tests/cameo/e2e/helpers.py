"""Checks shared by the end-to-end cameo tests."""

from __future__ import annotations

import io

import av
import numpy as np
from django.core.files.storage import default_storage
from PIL import Image

from generation.engines.base import RenderRequest, plan_from_dict
from generation.engines.registry import get_engine
from generation.models import Clip


def _frames(name: str) -> np.ndarray:
    with default_storage.open(name, "rb") as handle, av.open(io.BytesIO(handle.read())) as box:
        return np.stack([f.to_ndarray(format="rgb24") for f in box.decode(video=0)])


def _rgb(name: str) -> np.ndarray:
    with default_storage.open(name, "rb") as handle, Image.open(handle) as image:
        return np.asarray(image.convert("RGB"))


def assert_shows_likeness(clip: Clip, key: str, reference: str) -> None:
    """The clip's pixels where the likeness would change the picture match a render with the
    reference face far better than one with the engine's default head."""
    job = clip.job
    engine = get_engine(job.engine)
    plan = plan_from_dict(job.plan)

    def render(faces):
        request = RenderRequest(
            plan=plan, width=job.width, height=job.height, seed=job.seed, cameo_images=faces
        )
        return engine.render(request).frames.astype(np.int32)

    with_face, without = render({key: _rgb(reference)}), render({})
    decoded = _frames(clip.video.name).astype(np.int32)
    n = min(len(decoded), len(with_face))
    face_pixels = np.abs(with_face[:n] - without[:n]).sum(-1) > 60
    assert face_pixels.sum() > 200, "the likeness should change the picture"
    near = np.abs(decoded[:n] - with_face[:n])[face_pixels].mean()
    far = np.abs(decoded[:n] - without[:n])[face_pixels].mean()
    assert near < far / 2, (near, far)
