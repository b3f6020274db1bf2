"""Signs that a recording was filmed off a screen.

Three measurements, each of something a screen does and a room rarely does:

- ``grid``: a display is a regular lattice of subpixels. Filmed by a camera whose pixels do not
  line up with it, the lattice aliases into moiré: sharp, isolated peaks in the spectrum of
  the picture's fine detail. Camera noise and natural texture spread over the spectrum
  instead. Measured on full-resolution luma crops: the strongest peak of the high-passed
  spectrum (outside the lowest frequencies) over the spectrum's median.
- ``banding``: a panel refreshing out of step with the camera's shutter leaves horizontal
  bands that roll down the picture. Each frame's row brightness, minus the recording's
  median row profile, is the same sinusoid moving over time; measured as the peak of the
  averaged row spectrum over its median.
- ``border``: a monitor's bezel is a dark rectangle around the picture: long straight edges
  near all four sides, the same in every frame.

Limits, plainly: a recapture filmed slightly out of focus (no moiré), on a high-refresh
panel (no banding) and cropped inside the bezel defeats all three; a real room with a
striped shirt, blinds or a patterned wall can raise ``grid``. So only a strong ``grid`` or
``banding`` fails a recording; weaker signs, and the border alone, go to review.
"""

from __future__ import annotations

import cv2
import numpy as np

GRID_FAIL = 100.0
GRID_REVIEW = 60.0
BANDING_FAIL = 45.0
BANDING_REVIEW = 30.0


def _peak_ratio(spectrum: np.ndarray) -> float:
    median = float(np.median(spectrum))
    return float(spectrum.max() / median) if median > 0 else 0.0


def grid_score(probes: np.ndarray | None) -> float:
    if probes is None or len(probes) == 0:
        return 0.0
    scores = []
    for probe in probes:
        image = probe.astype(np.float32)
        detail = image - cv2.GaussianBlur(image, (0, 0), 1.5)
        h, w = detail.shape
        window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
        spectrum = np.abs(np.fft.fftshift(np.fft.fft2(detail * window)))
        fy = np.fft.fftshift(np.fft.fftfreq(h))[:, None]
        fx = np.fft.fftshift(np.fft.fftfreq(w))[None, :]
        radius = np.hypot(fy, fx)
        scores.append(_peak_ratio(spectrum[(radius > 0.06) & (radius < 0.5)]))
    return float(np.median(scores))


def banding_score(frames: np.ndarray) -> float:
    if len(frames) < 4:
        return 0.0
    # Row means first, then luma: the same numbers for a fraction of the work.
    rows = frames.mean(axis=2, dtype=np.float32) @ np.float32([0.299, 0.587, 0.114])
    residual = rows - np.median(rows, axis=0, keepdims=True)
    residual -= residual.mean(axis=1, keepdims=True)
    spectrum = np.abs(np.fft.rfft(residual * np.hanning(rows.shape[1]), axis=1)).mean(axis=0)
    return _peak_ratio(spectrum[2 : len(spectrum) // 2])


def border_score(frames: np.ndarray) -> float:
    """Share of sampled frames showing long straight edges near all four sides."""
    hits = 0
    picked = frames[:: max(1, len(frames) // 8)]
    for frame in picked:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        edges = cv2.Canny(gray, 60, 160)
        lines = cv2.HoughLinesP(
            edges, 1, np.pi / 180, threshold=80, minLineLength=int(0.5 * min(h, w)), maxLineGap=6
        )
        sides = set()
        for x1, y1, x2, y2 in lines.reshape(-1, 4) if lines is not None else []:
            if abs(y2 - y1) <= 0.05 * abs(x2 - x1):
                y = (y1 + y2) / 2
                sides.add("top" if y < 0.25 * h else "bottom" if y > 0.75 * h else "")
            elif abs(x2 - x1) <= 0.05 * abs(y2 - y1):
                x = (x1 + x2) / 2
                sides.add("left" if x < 0.25 * w else "right" if x > 0.75 * w else "")
        if {"top", "bottom", "left", "right"} <= sides:
            hits += 1
    return hits / max(1, len(picked))


def judge_screen(*, grid: float, banding: float, border: float) -> tuple[str, str]:
    detail = f"grid {grid:.1f}, banding {banding:.1f}, border {border:.0%}"
    if grid >= GRID_FAIL or banding >= BANDING_FAIL:
        return "fail", f"The recording looks filmed off a screen ({detail})."
    if grid >= GRID_REVIEW or banding >= BANDING_REVIEW or border >= 0.5:
        return "review", f"The recording may have been filmed off a screen ({detail})."
    return "pass", f"No sign of a screen ({detail})."
