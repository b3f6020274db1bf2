"""The visible watermark names the creator, moves over the whole frame and touches nothing else."""

from __future__ import annotations

import time

import numpy as np
import pytest

from generation.media.watermark import (
    MovingWatermark,
    WatermarkStyle,
    apply_watermark,
    watermark_text,
)
from tests.generation.media.helpers import FPS, moving_clip

WIDTH, HEIGHT = 360, 640


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) bounding the pixels that differ."""
    ys, xs = np.nonzero((before != after).any(axis=-1))
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.fixture(scope="module")
def clip():
    return moving_clip(frames=96, width=WIDTH, height=HEIGHT)


@pytest.fixture(scope="module")
def marked(clip):
    return apply_watermark(clip, watermark_text("ava"), fps=FPS)


def test_text_is_the_handle_and_the_brand():
    assert watermark_text("ava") == "@ava \u00b7 Montage"
    assert watermark_text("@ava") == "@ava \u00b7 Montage"
    with pytest.raises(ValueError):
        watermark_text(" @ ")


def test_first_and_last_frames_carry_the_mark_in_different_places(clip, marked):
    first = changed_box(clip[0], marked[0])
    last = changed_box(clip[-1], marked[-1])
    # The first frame starts at the top-left waypoint; 4 s later it is two segments on.
    assert first[0] < WIDTH * 0.1 and first[1] < HEIGHT * 0.1
    centre = np.array([(first[0] + first[2]) / 2, (first[1] + first[3]) / 2])
    centre_last = np.array([(last[0] + last[2]) / 2, (last[1] + last[3]) / 2])
    assert np.linalg.norm(centre - centre_last) > HEIGHT / 3


def test_only_the_marks_rectangle_changes(clip, marked):
    mark = MovingWatermark(watermark_text("ava"), width=WIDTH, height=HEIGHT, fps=FPS)
    for index in (0, 17, 50, 95):
        x, y = mark.position(index)
        outside = np.ones((HEIGHT, WIDTH), dtype=bool)
        outside[y : y + mark.sprite_height, x : x + mark.sprite_width] = False
        assert np.array_equal(clip[index][outside], marked[index][outside])
        changed = (clip[index] != marked[index]).any(axis=-1).mean()
        assert 0.003 < changed < 0.03


def test_the_input_is_untouched_unless_marked_in_place(clip):
    original = clip[:4].copy()
    apply_watermark(original, "@ava \u00b7 Montage")
    assert np.array_equal(original, clip[:4])
    result = apply_watermark(original, "@ava \u00b7 Montage", out=original)
    assert result is original
    assert not np.array_equal(original, clip[:4])


def test_the_path_reaches_all_four_corners_of_the_frame():
    mark = MovingWatermark(watermark_text("ava"), width=WIDTH, height=HEIGHT, fps=FPS)
    loop = round(8 * FPS * mark.style.segment_s)
    positions = np.array([mark.position(i) for i in range(loop)])
    left, top = mark.margin, mark.margin
    right = WIDTH - mark.margin - mark.sprite_width
    bottom = HEIGHT - mark.margin - mark.sprite_height
    corners = {(left, top), (right, top), (left, bottom), (right, bottom)}
    assert corners <= {tuple(p) for p in positions}
    assert positions[:, 0].min() == left and positions[:, 0].max() == right
    assert positions[:, 1].min() == top and positions[:, 1].max() == bottom


def test_it_moves_smoothly_between_frames():
    mark = MovingWatermark(watermark_text("ava"), width=720, height=1280, fps=FPS)
    steps = [np.hypot(*np.subtract(mark.position(i + 1), mark.position(i))) for i in range(8 * 48)]
    # No jumps: at most ~1/40 of the frame's diagonal from one frame to the next.
    assert max(steps) < np.hypot(720, 1280) / 40


def test_it_is_semi_transparent_with_a_dark_outline():
    black = np.zeros((1, HEIGHT, WIDTH, 3), np.uint8)
    white = np.full((1, HEIGHT, WIDTH, 3), 255, np.uint8)
    on_black = apply_watermark(black, "@ava \u00b7 Montage")
    on_white = apply_watermark(white, "@ava \u00b7 Montage")
    opacity = WatermarkStyle().opacity
    # Text shows on black, the outline on white; neither is fully opaque.
    assert on_black.max() == round(255 * opacity)
    assert on_white.min() == round(255 * (1 - opacity))


def test_long_handles_shrink_to_fit_small_frames():
    mark = MovingWatermark(watermark_text("a" * 30), width=160, height=90, fps=FPS)
    assert mark.sprite_width <= 160 - 2 * mark.margin
    frames = np.zeros((3, 90, 160, 3), np.uint8)
    assert apply_watermark(frames, watermark_text("a" * 30)).any()


def test_it_costs_little_per_frame():
    frames = np.zeros((24, 1280, 720, 3), np.uint8)
    apply_watermark(frames[:1], "@ava \u00b7 Montage", out=frames[:1])
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        apply_watermark(frames, "@ava \u00b7 Montage", out=frames)
        best = min(best, time.perf_counter() - started)
    # Measured ~0.1 ms per 720x1280 frame; the bound leaves room for a busy machine.
    assert best / len(frames) < 0.005
