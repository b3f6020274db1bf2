"""A cameo's private media: reference frames, voice sample, source uploads.

Everything lives under ``settings.CAMEO_PRIVATE_PREFIX`` in the default storage and is never
given a URL; the engine reads the reference image by its storage name. Deleting a cameo
purges the whole folder.
"""

from __future__ import annotations

import io
import os
import tempfile
from contextlib import contextmanager, suppress

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import InvalidRequest

IMAGE_FORMATS = {"PNG", "JPEG", "WEBP"}
MAX_PIXELS = 40_000_000
REFERENCE_SIDE = 512


def folder(cameo) -> str:
    return f"{settings.CAMEO_PRIVATE_PREFIX}/{cameo.id.hex}"


def save(cameo, name: str, data: bytes) -> str:
    path = f"{folder(cameo)}/{name}"
    if default_storage.exists(path):
        default_storage.delete(path)
    return default_storage.save(path, ContentFile(data))


def png_bytes(frame: np.ndarray) -> bytes:
    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).convert("RGB")
    image.thumbnail((REFERENCE_SIDE, REFERENCE_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def purge(cameo) -> None:
    """Deletes every file under the cameo's private folder (it holds no sub-folders)."""
    root = folder(cameo)
    try:
        _, files = default_storage.listdir(root)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        default_storage.delete(f"{root}/{name}")
    with suppress(OSError, NotImplementedError):
        os.rmdir(default_storage.path(root))


@contextmanager
def local_copy(name: str, suffix: str = ""):
    """A local file with the stored object's bytes (storages need not be local disks)."""
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        with default_storage.open(name, "rb") as source:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                handle.write(chunk)
        handle.flush()
        yield handle.name


def image_frame(data: bytes, *, param: str) -> np.ndarray | None:
    """The picture in ``data`` as RGB, or None when it is not an image at all."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in IMAGE_FORMATS:
                return None
            if image.width * image.height > MAX_PIXELS:
                raise InvalidRequest(
                    "The image has too many pixels.", code="invalid_media", param=param
                )
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError):
        return None


def video_frame(data: bytes, *, param: str) -> np.ndarray:
    """The middle frame of a short video (the subject is most likely in view there)."""
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            frames = []
            for index, frame in enumerate(container.decode(video=0)):
                frames.append(frame.to_ndarray(format="rgb24"))
                if index >= 240:  # ten seconds at 24 fps is plenty to choose from
                    break
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise InvalidRequest(
            "The file is neither a readable image (PNG, JPEG, WebP) nor a readable video.",
            code="invalid_media",
            param=param,
        ) from exc
    if not frames:
        raise InvalidRequest("The video has no frames.", code="invalid_media", param=param)
    frame = frames[len(frames) // 2]
    if frame.shape[0] * frame.shape[1] > MAX_PIXELS:
        raise InvalidRequest("The video's frames are too large.", code="invalid_media", param=param)
    return frame


def reference_from_upload(data: bytes, *, param: str) -> np.ndarray:
    frame = image_frame(data, param=param)
    return frame if frame is not None else video_frame(data, param=param)
