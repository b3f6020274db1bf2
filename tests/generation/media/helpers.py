"""Small clips and MP4 box parsing shared by the media and provenance tests."""

from __future__ import annotations

import struct

import numpy as np

FPS = 24
RATE = 48_000


def moving_clip(frames: int = 48, width: int = 256, height: int = 144) -> np.ndarray:
    """A gradient with a bright square sliding across it: real motion for the encoder."""
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack(
        [xs * 255 // max(1, width - 1), ys * 255 // max(1, height - 1), np.full_like(xs, 90)],
        axis=-1,
    ).astype(np.uint8)
    clip = np.repeat(base[np.newaxis], frames, axis=0)
    side = max(4, height // 4)
    for t in range(frames):
        x = (t * 3) % (width - side)
        clip[t, height // 3 : height // 3 + side, x : x + side] = (250, 240, 30)
    return clip


def tone(seconds: float, *, left_hz: float = 440.0, right: bool = True) -> np.ndarray:
    """Stereo float32: a sine on the left, the same on the right unless ``right`` is False."""
    t = np.arange(round(seconds * RATE)) / RATE
    sine = (0.25 * np.sin(2 * np.pi * left_hz * t)).astype(np.float32)
    return np.stack([sine, sine if right else np.zeros_like(sine)])


def mp4_boxes(data: bytes) -> list[tuple[str, int, int]]:
    """Top-level ISO BMFF boxes as (type, offset, size)."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        boxes.append((kind.decode("latin-1"), offset, size))
        offset += size
    return boxes


def box_order(data: bytes) -> list[str]:
    return [kind for kind, _, _ in mp4_boxes(data)]
