"""Preview images of a clip, the OpenAI Videos API's ``thumbnail`` and ``spritesheet`` variants.

The thumbnail is one representative frame as WebP; the spritesheet is a JPEG grid of evenly
spaced frames, left to right then top to bottom, which players use for scrubbing previews.
Both are made from the frames the viewer will see (after the visible watermark).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

CONTENT_TYPES = {"WEBP": "image/webp", "JPEG": "image/jpeg", "PNG": "image/png"}


@dataclass(frozen=True)
class Preview:
    data: bytes
    content_type: str
    width: int
    height: int


@dataclass(frozen=True)
class Thumbnail(Preview):
    frame_index: int = 0


@dataclass(frozen=True)
class Spritesheet(Preview):
    columns: int = 0
    rows: int = 0
    tile_width: int = 0
    tile_height: int = 0
    # Which frame each tile shows, in tile order: with the fps this gives a scrubber's timings.
    frame_indices: tuple[int, ...] = field(default_factory=tuple)


def _check(frames: np.ndarray) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"frames must be uint8 (T, H, W, 3) with T >= 1, got {frames.shape}")


def representative_frame_index(frames: np.ndarray, *, candidates: int = 9) -> int:
    """The most detailed of a few evenly spaced frames from the middle 80% of the clip.

    Skipping the ends avoids fade-ins and black first frames; among the candidates, the one
    with the most luminance contrast (measured on a 1/8 subsample) is the least likely to be
    a blank sky or a motion-blurred transition. Ties go to the earliest, so it is deterministic.
    """
    _check(frames)
    count = len(frames)
    if count < 3:
        return 0
    lo, hi = round(count * 0.1), max(round(count * 0.9) - 1, round(count * 0.1))
    indices = sorted({round(i) for i in np.linspace(lo, hi, num=min(candidates, hi - lo + 1))})
    weights = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    scores = [float((frames[i, ::8, ::8].astype(np.float32) @ weights).std()) for i in indices]
    return indices[int(np.argmax(scores))]


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    if fmt == "WEBP":
        # method 4 is Pillow's default balance; 6 is several times slower for a few percent.
        image.save(buffer, format=fmt, quality=quality, method=4)
    elif fmt == "JPEG":
        image.save(buffer, format=fmt, quality=quality, optimize=True, progressive=True)
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


def _format(name: str) -> str:
    fmt = name.upper().replace("JPG", "JPEG")
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unsupported image format {name!r}")
    return fmt


def make_thumbnail(
    frames: np.ndarray,
    *,
    fmt: str = "webp",
    quality: int = 82,
    max_side: int | None = None,
    index: int | None = None,
) -> Thumbnail:
    """One frame as an image, at the clip's size unless ``max_side`` bounds it."""
    _check(frames)
    fmt = _format(fmt)
    index = representative_frame_index(frames) if index is None else index
    if not 0 <= index < len(frames):
        raise ValueError(f"frame index {index} is outside the clip's {len(frames)} frames")
    image = Image.fromarray(frames[index])
    if max_side and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return Thumbnail(
        data=_encode(image, fmt, quality),
        content_type=CONTENT_TYPES[fmt],
        width=image.width,
        height=image.height,
        frame_index=index,
    )


def spritesheet_indices(frame_count: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly, each the middle of its equal slice of the clip."""
    if frame_count < 1 or count < 1:
        raise ValueError("frame_count and count must be positive")
    count = min(count, frame_count)
    return [min(frame_count - 1, math.floor((i + 0.5) * frame_count / count)) for i in range(count)]


def make_spritesheet(
    frames: np.ndarray,
    *,
    count: int = 10,
    columns: int = 5,
    tile_width: int = 180,
    quality: int = 80,
) -> Spritesheet:
    """A JPEG grid of ``count`` evenly spaced frames, ``columns`` across, tiles ``tile_width``
    wide with the clip's aspect ratio."""
    _check(frames)
    indices = spritesheet_indices(len(frames), count)
    columns = max(1, min(columns, len(indices)))
    rows = math.ceil(len(indices) / columns)
    height, width = frames.shape[1:3]
    tile_w = min(tile_width, width)
    tile_h = max(1, round(height * tile_w / width))
    sheet = Image.new("RGB", (columns * tile_w, rows * tile_h))
    for n, index in enumerate(indices):
        tile = Image.fromarray(frames[index])
        # reduce() first: a box filter by an integer factor is cheap and leaves LANCZOS a
        # small image to finish on.
        factor = max(1, min(width // tile_w, height // tile_h))
        if factor > 1:
            tile = tile.reduce(factor)
        tile = tile.resize((tile_w, tile_h), Image.Resampling.LANCZOS)
        sheet.paste(tile, ((n % columns) * tile_w, (n // columns) * tile_h))
    return Spritesheet(
        data=_encode(sheet, "JPEG", quality),
        content_type="image/jpeg",
        width=sheet.width,
        height=sheet.height,
        columns=columns,
        rows=rows,
        tile_width=tile_w,
        tile_height=tile_h,
        frame_indices=tuple(indices),
    )
