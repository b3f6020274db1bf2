"""The visible watermark: the creator's handle, drifting around the frame.

A mark fixed in one corner is removed by cropping that corner. This one travels a closed
zig-zag that touches all four corners and crosses the middle band of the frame, so any crop
that removes it for the whole clip removes most of the picture too.

The text is rasterised once into an RGBA sprite (Pillow) and alpha-blended per frame in numpy
at the frame's position, so the cost per frame is a blend of a few thousand pixels. The font is
the one bundled inside Pillow, so the mark looks the same on every worker without system fonts
(handles are ASCII by the accounts validator; the bundled font covers that and "·").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BRAND = "Montage"

# Normalised (x, y) of the sprite's top-left within the free area, visited in order and looped.
# The loop passes every corner and sweeps the full width at four heights.
WAYPOINTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (1.0, 1 / 3),
    (0.0, 2 / 3),
    (1.0, 1.0),
    (0.0, 1.0),
    (1.0, 2 / 3),
    (0.0, 1 / 3),
    (1.0, 0.0),
)


def watermark_text(handle: str, brand: str = BRAND) -> str:
    """``"ava"`` or ``"@ava"`` → ``"@ava · Montage"``."""
    handle = handle.strip().lstrip("@")
    if not handle:
        raise ValueError("a watermark needs the creator's handle")
    return f"@{handle} \u00b7 {brand}"


@dataclass(frozen=True)
class WatermarkStyle:
    # Font size as a fraction of the frame's short side: ~31 px on a 720-wide frame.
    size: float = 0.043
    # Opacity of the whole mark: readable over any background, without hiding the picture.
    opacity: float = 0.6
    # Outline width as a fraction of the font size: dark edge keeps white text legible on
    # bright skies and snow.
    outline: float = 0.09
    # Distance kept from the frame's edges, as a fraction of the short side.
    margin: float = 0.035
    # Seconds to drift from one waypoint to the next.
    segment_s: float = 2.0

    def __post_init__(self):
        if not 0 < self.opacity <= 1:
            raise ValueError("opacity must be within (0, 1]")
        if self.segment_s <= 0 or self.size <= 0:
            raise ValueError("size and segment_s must be positive")


def render_sprite(text: str, font_px: int, style: WatermarkStyle) -> np.ndarray:
    """The mark as straight-alpha RGBA uint8, cropped tight to the drawn pixels."""
    font = ImageFont.load_default(size=font_px)
    stroke = max(1, round(font_px * style.outline))
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    pad = stroke + 1
    image = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0))
    ImageDraw.Draw(image).text(
        (pad - left, pad - top),
        text,
        font=font,
        fill=(255, 255, 255, 255),
        stroke_width=stroke,
        stroke_fill=(0, 0, 0, 255),
    )
    sprite = np.asarray(image).copy()
    sprite[..., 3] = np.round(sprite[..., 3] * style.opacity).astype(np.uint8)
    ys, xs = np.nonzero(sprite[..., 3])
    return sprite[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


class MovingWatermark:
    """A sprite and its path for one frame size and frame rate; ``apply`` draws frame ``i``."""

    def __init__(
        self,
        text: str,
        *,
        width: int,
        height: int,
        fps: int = 24,
        style: WatermarkStyle | None = None,
        phase: float = 0.0,
    ):
        self.style = style or WatermarkStyle()
        self.width, self.height, self.fps = width, height, fps
        # Where on the loop frame 0 starts, in segments: lets callers vary the path per clip.
        self.phase = phase
        short = min(width, height)
        self.margin = round(short * self.style.margin)
        font_px = max(8, round(short * self.style.size))
        sprite = render_sprite(text, font_px, self.style)
        room = width - 2 * self.margin
        if sprite.shape[1] > room:
            # Long handles on small frames: shrink the font until the mark fits across.
            font_px = max(6, math.floor(font_px * room / sprite.shape[1]))
            sprite = render_sprite(text, font_px, self.style)
        if sprite.shape[1] > width or sprite.shape[0] > height:
            raise ValueError(f"a {width}x{height} frame is too small for the watermark")
        self.sprite = sprite
        alpha = sprite[..., 3:4].astype(np.uint16)
        # Premultiplied colour and inverse alpha, so each frame costs one multiply-add.
        self._premultiplied = sprite[..., :3].astype(np.uint16) * alpha
        self._inverse_alpha = 255 - alpha
        self.sprite_height, self.sprite_width = sprite.shape[:2]
        self._free_x = max(0, width - 2 * self.margin - self.sprite_width)
        self._free_y = max(0, height - 2 * self.margin - self.sprite_height)

    def position(self, index: int) -> tuple[int, int]:
        """Top-left (x, y) of the sprite in frame ``index``."""
        progress = index / (self.fps * self.style.segment_s) + self.phase
        segment = math.floor(progress)
        local = progress - segment
        # Smoothstep: the mark eases out of and into each waypoint, so it reads at rest
        # before moving on.
        eased = local * local * (3 - 2 * local)
        x0, y0 = WAYPOINTS[segment % len(WAYPOINTS)]
        x1, y1 = WAYPOINTS[(segment + 1) % len(WAYPOINTS)]
        u = x0 + (x1 - x0) * eased
        v = y0 + (y1 - y0) * eased
        x = self.margin + round(u * self._free_x)
        y = self.margin + round(v * self._free_y)
        return (
            min(max(x, 0), self.width - self.sprite_width),
            min(max(y, 0), self.height - self.sprite_height),
        )

    def apply(self, frame: np.ndarray, index: int) -> None:
        """Draw the mark into ``frame`` (uint8 RGB, modified in place)."""
        x, y = self.position(index)
        region = frame[y : y + self.sprite_height, x : x + self.sprite_width]
        blended = region.astype(np.uint16) * self._inverse_alpha + self._premultiplied
        # Exact rounding division by 255 for 0..65025 without a divide.
        blended += 128
        blended += blended >> 8
        region[...] = (blended >> 8).astype(np.uint8)


def apply_watermark(
    frames: np.ndarray,
    text: str,
    *,
    fps: int = 24,
    style: WatermarkStyle | None = None,
    phase: float = 0.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Return ``frames`` (uint8, (T, H, W, 3)) with the moving mark drawn in.

    Writes into ``out`` when given (pass ``out=frames`` to mark in place and skip a copy of
    the whole clip); otherwise into a new array.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if out is None:
        out = frames.copy()
    elif out is not frames:
        if out.shape != frames.shape or out.dtype != frames.dtype:
            raise ValueError("out must match frames in shape and dtype")
        out[...] = frames
    mark = MovingWatermark(
        text, width=frames.shape[2], height=frames.shape[1], fps=fps, style=style, phase=phase
    )
    for index in range(out.shape[0]):
        mark.apply(out[index], index)
    return out
