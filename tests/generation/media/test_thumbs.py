"""Thumbnail (WebP) and spritesheet (JPEG grid) decode at the promised sizes and show the right
frames."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from generation.media.thumbs import (
    make_spritesheet,
    make_thumbnail,
    representative_frame_index,
    spritesheet_indices,
)
from tests.generation.media.helpers import moving_clip


def flat_frames(count: int, width: int = 320, height: int = 180) -> np.ndarray:
    """Frame ``i`` is one flat colour that encodes ``i``, so a tile tells which frame it is."""
    frames = np.empty((count, height, width, 3), np.uint8)
    for i in range(count):
        frames[i] = (i * 2 % 256, 255 - i * 2 % 256, 128)
    return frames


def test_thumbnail_is_webp_at_the_clip_size():
    thumb = make_thumbnail(moving_clip(frames=24, width=256, height=144))
    image = Image.open(io.BytesIO(thumb.data))
    assert image.format == "WEBP"
    assert thumb.content_type == "image/webp"
    assert image.size == (thumb.width, thumb.height) == (256, 144)


def test_thumbnail_can_be_bounded_and_jpeg():
    thumb = make_thumbnail(moving_clip(frames=24, width=256, height=144), fmt="jpg", max_side=128)
    image = Image.open(io.BytesIO(thumb.data))
    assert image.format == "JPEG"
    assert thumb.content_type == "image/jpeg"
    assert image.size == (128, 72)


def test_thumbnail_shows_the_chosen_frame():
    frames = flat_frames(40)
    thumb = make_thumbnail(frames, fmt="png", index=21)
    assert thumb.frame_index == 21
    pixels = np.asarray(Image.open(io.BytesIO(thumb.data)).convert("RGB"))
    assert np.array_equal(pixels, frames[21])
    with pytest.raises(ValueError):
        make_thumbnail(frames, index=40)


def test_representative_frame_skips_blank_ends_for_the_most_detailed_frame():
    frames = np.zeros((48, 64, 64, 3), np.uint8)
    rng = np.random.default_rng(1)
    # Detail grows towards frame 24 and fades after; the first and last frames are black.
    for i in range(4, 44):
        amount = 1 - abs(i - 24) / 24
        frames[i] = (rng.random((64, 64, 1)) * 255 * amount).astype(np.uint8)
    index = representative_frame_index(frames)
    assert 20 <= index <= 28
    assert representative_frame_index(frames[:2]) == 0


def test_spritesheet_is_a_jpeg_grid_of_evenly_spaced_frames_in_order():
    frames = flat_frames(96)
    sheet = make_spritesheet(frames, count=10, columns=5, tile_width=64)
    image = Image.open(io.BytesIO(sheet.data))
    assert image.format == "JPEG"
    assert sheet.content_type == "image/jpeg"
    assert (sheet.columns, sheet.rows) == (5, 2)
    assert (sheet.tile_width, sheet.tile_height) == (64, 36)
    assert image.size == (sheet.width, sheet.height) == (5 * 64, 2 * 36)
    assert sheet.frame_indices == (4, 14, 24, 33, 43, 52, 62, 72, 81, 91)
    pixels = np.asarray(image.convert("RGB")).astype(int)
    for n, index in enumerate(sheet.frame_indices):
        row, column = divmod(n, 5)
        tile = pixels[row * 36 + 8 : row * 36 + 28, column * 64 + 8 : column * 64 + 56]
        assert np.abs(tile.mean(axis=(0, 1)) - frames[index, 0, 0]).max() < 6


def test_spritesheet_of_a_short_clip_uses_every_frame_once():
    sheet = make_spritesheet(flat_frames(3), count=10, columns=5)
    assert sheet.frame_indices == (0, 1, 2)
    assert (sheet.columns, sheet.rows) == (3, 1)


def test_spritesheet_indices_are_slice_midpoints():
    assert spritesheet_indices(96, 4) == [12, 36, 60, 84]
    assert spritesheet_indices(1, 5) == [0]
    with pytest.raises(ValueError):
        spritesheet_indices(0, 5)


def test_rejects_frames_that_are_not_uint8_rgb():
    with pytest.raises(ValueError):
        make_thumbnail(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError):
        make_spritesheet(np.zeros((2, 8, 8, 3), np.float32))
