"""Faces over time, from OpenCV's bundled Haar cascades (frontal and profile).

Direction convention: a turn to the ``"left"`` is the person's own left, in the recording as the
camera sees it (unmirrored, which is how phones usually store front-camera video; the client
should record that way). The person's left is then the picture's right: turning left points
the nose toward the right edge of the picture. A mirrored recording reverses every turn; it is
recognised (the observed order is the exact mirror of the challenge) and sent to review rather
than passed or failed.

Two cues say which way a head turned, and both come from how a head moves, not from the test
footage: (1) the profile cascade was trained on one side only and finds faces whose nose points
to the picture's left, so a hit on the frame itself means a nose pointing left and a hit on
the mirrored frame a nose pointing right; (2) a head turns about the neck, behind the face,
so while the frontal detector still holds the face (up to roughly 40-60 degrees of yaw) its
box slides toward where the nose points. A sideways slide alone is not a turn: every turn
must also lose the frontal face.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

DETECT_WIDTH = 200  # analysis width for the cascades; faces stay well above their 24 px minimum
FRONTAL_NEIGHBOURS = 4
PROFILE_NEIGHBOURS = 3
REFERENCE_SIZE = 256
# Smallest face looked for, in analysis pixels (a sixth of the width): a liveness selfie fills
# the frame, and smaller scales cost most of the cascades' time.
MIN_FACE = DETECT_WIDTH // 6


@functools.cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + name
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's bundled cascade {path} could not be loaded.")
    return cascade


@dataclass
class FrameFaces:
    time: float
    frontal: list[tuple[float, float, float, float]]  # x, y, w, h in analysis-frame pixels
    nose_left: list[tuple[float, float, float, float]]  # profile boxes, nose toward picture left
    nose_right: list[tuple[float, float, float, float]]

    @property
    def any(self) -> bool:
        return bool(self.frontal or self.nose_left or self.nose_right)


def detect(frames: np.ndarray, times: np.ndarray) -> list[FrameFaces]:
    frontal = _cascade("haarcascade_frontalface_default.xml")
    profile = _cascade("haarcascade_profileface.xml")
    out = []
    height, width = frames.shape[1:3]
    scale = width / DETECT_WIDTH
    size = (DETECT_WIDTH, max(2, round(height / scale)))
    least = (MIN_FACE, MIN_FACE)
    for frame, t in zip(frames, times, strict=True):
        gray = cv2.equalizeHist(
            cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
        )

        def boxes(found, *, mirrored=False):
            result = []
            for x, y, w, h in found:
                if mirrored:
                    x = size[0] - x - w
                result.append((x * scale, y * scale, w * scale, h * scale))
            return result

        found = FrameFaces(
            time=float(t),
            frontal=boxes(frontal.detectMultiScale(gray, 1.1, FRONTAL_NEIGHBOURS, minSize=least)),
            nose_left=[],
            nose_right=[],
        )
        # The profile cascade also fires on frontal faces, so it only speaks where the frontal
        # one is silent; skipping it elsewhere halves the time.
        if not found.frontal:
            found.nose_left = boxes(
                profile.detectMultiScale(gray, 1.1, PROFILE_NEIGHBOURS, minSize=least)
            )
            found.nose_right = boxes(
                profile.detectMultiScale(cv2.flip(gray, 1), 1.1, PROFILE_NEIGHBOURS, minSize=least),
                mirrored=True,
            )
        out.append(found)
    return out


def _overlap(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return ix * iy / min(aw * ah, bw * bh)


def _largest(boxes):
    return max(boxes, key=lambda b: b[2] * b[3]) if boxes else None


# -- single face -----------------------------------------------------------------------------


def count_people(faces: list[FrameFaces]) -> dict:
    """How often more than one face shows at once. A second face must be frontal, apart from
    the first and at least half its size; the verdict rests on the share of frames showing
    one, so a single frame's cascade false alarm does not decide it. A second person seen only
    in profile is not counted."""
    multi = 0
    present = 0
    for frame in faces:
        if frame.any:
            present += 1
        main = _largest(frame.frontal)
        if main is None:
            continue
        others = [
            b
            for b in frame.frontal
            if b is not main and _overlap(main, b) < 0.2 and b[2] >= 0.5 * main[2]
        ]
        if others:
            multi += 1
    total = max(1, len(faces))
    return {"present": present / total, "multiple": multi / total, "frames": len(faces)}


# -- head turns ------------------------------------------------------------------------------


@dataclass
class Turn:
    start: float
    end: float
    direction: str | None  # "left" / "right" (the person's own), None when the cues disagree
    evidence: dict


def _runs(mask: list[bool]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, value in enumerate([*mask, False]):
        if value and start is None:
            start = i
        elif not value and start is not None:
            runs.append((start, i))
            start = None
    return runs


def find_turns(faces: list[FrameFaces], *, after: float) -> list[Turn]:
    """Spans after ``after`` (the end of the digits) where the frontal face is lost, each with
    the direction its cues give."""
    frames = [f for f in faces if f.time >= after]
    if not frames:
        return []
    lost = [not f.frontal for f in frames]
    # Bridge single-sample gaps: a cascade flickers, a head does not.
    for i in range(1, len(lost) - 1):
        if lost[i - 1] and lost[i + 1]:
            lost[i] = True
        elif not lost[i - 1] and not lost[i + 1] and lost[i]:
            lost[i] = False
    turns = []
    spans = _runs(lost)
    for n, (start, end) in enumerate(spans):
        if end - start < 2:
            continue
        before_stop = start
        before_start = spans[n - 1][1] if n else 0
        after_start = end
        after_stop = spans[n + 1][0] if n + 1 < len(spans) else len(frames)
        evidence = _turn_evidence(
            frames, start, end, (before_start, before_stop), (after_start, after_stop)
        )
        turns.append(
            Turn(
                start=frames[start].time,
                end=frames[end - 1].time,
                direction=_direction(evidence),
                evidence=evidence,
            )
        )
    return turns


def _turn_evidence(frames, start, end, before, after) -> dict:
    """Votes for "nose toward picture right" (+) and "left" (-): profile hits inside the
    span, and the frontal box's slide going into and coming out of it."""
    profile = 0
    for frame in frames[start:end]:
        profile += len(frame.nose_right) > 0
        profile -= len(frame.nose_left) > 0
    slide = 0.0
    slides = []
    for lo, hi, edge in ((before[0], before[1], before[1] - 1), (after[0], after[1], after[0])):
        run = [frames[i].frontal for i in range(lo, hi) if frames[i].frontal]
        if len(run) < 2 or not frames[edge].frontal:
            continue
        centres = [_largest(b)[0] + _largest(b)[2] / 2 for b in run]
        widths = [_largest(b)[2] for b in run]
        edge_box = _largest(frames[edge].frontal)
        rest = float(np.median(centres))
        slides.append((edge_box[0] + edge_box[2] / 2 - rest) / float(np.median(widths)))
    if slides:
        slide = float(np.mean(slides))
    return {"profile_votes": profile, "slide": round(slide, 3), "samples": end - start}


SLIDE_MIN = 0.12  # face widths: smaller slides are hand shake, not a turn


def _direction(evidence: dict) -> str | None:
    profile, slide = evidence["profile_votes"], evidence["slide"]
    votes = []
    if profile:
        votes.append(1 if profile > 0 else -1)
    if abs(slide) >= SLIDE_MIN:
        votes.append(1 if slide > 0 else -1)
    if not votes or len(set(votes)) > 1:
        return None
    # Nose toward the picture's right is the person's own left (unmirrored recording).
    return "left" if votes[0] > 0 else "right"


def compare_turns(observed: list[Turn], challenged: list[str]) -> tuple[str, str]:
    """(verdict, detail) for the observed turns against the challenge."""
    seen = [t.direction for t in observed]
    shown = ", ".join(d or "unclear" for d in seen) or "none"
    wanted = ", ".join(challenged)
    if len(seen) != len(challenged):
        return (
            "fail",
            f"Expected {len(challenged)} head turns ({wanted}); saw {len(seen)} ({shown}).",
        )
    if seen == list(challenged):
        return "pass", f"Head turned {shown}, as challenged."
    mirror = {"left": "right", "right": "left"}
    if None in seen:
        agree = all(s is None or s == c for s, c in zip(seen, challenged, strict=True))
        if agree:
            return "review", f"Head turns {shown}: some directions could not be told apart."
        return "fail", f"Head turned {shown}; the challenge was {wanted}."
    if seen == [mirror[c] for c in challenged]:
        return "review", f"Head turned {shown}: the exact mirror of {wanted}; a mirrored recording?"
    return "fail", f"Head turned {shown}; the challenge was {wanted}."


# -- reference frames ------------------------------------------------------------------------


def reference_frames(
    frames: np.ndarray, faces: list[FrameFaces], *, until: float, count: int = 3
) -> list[np.ndarray]:
    """The sharpest frontal crops (square, ``REFERENCE_SIZE``) from distinct moments before
    ``until``, while the person faces the camera reading the digits: the frontal cascade
    still holds a face turned 40 degrees, which is no reference for a likeness."""
    scored = []
    for index, found in enumerate(faces):
        if len(found.frontal) != 1 or found.time >= until:
            continue
        x, y, w, h = found.frontal[0]
        # A margin around the cascade's box, which stops at the brow and the chin.
        cx, cy, side = x + w / 2, y + h / 2, 1.5 * max(w, h)
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        x1, y1 = round(cx + side / 2), round(cy + side / 2)
        if x0 < 0 or y0 < 0 or x1 > frames.shape[2] or y1 > frames.shape[1]:
            continue
        crop = frames[index, y0:y1, x0:x1]
        sharpness = float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())
        scored.append((sharpness, index, crop))
    scored.sort(key=lambda s: -s[0])
    chosen: list[tuple[int, np.ndarray]] = []
    for _, index, crop in scored:
        if all(abs(index - other) >= 5 for other, _ in chosen):
            chosen.append((index, crop))
        if len(chosen) == count:
            break
    return [
        cv2.resize(crop, (REFERENCE_SIZE, REFERENCE_SIZE), interpolation=cv2.INTER_AREA)
        for _, crop in sorted(chosen, key=lambda c: c[0])
    ]
