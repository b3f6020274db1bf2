"""Output screening of a clip's pictures: frames sampled from the encoded video, scored by the
packaged NudeNet ONNX detector (weights ship inside the ``nudenet`` wheel), and hashed with PDQ
for the hash banks."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import av
import numpy as np

from generation.provenance.fingerprint import MIN_QUALITY, SecondHash, pdq

VERSION = "nudenet-3.4-320n"
# Detector classes that count as nudity; covered and face classes do not.
EXPLICIT = {
    "FEMALE_GENITALIA_EXPOSED": 1.0,
    "MALE_GENITALIA_EXPOSED": 1.0,
    "ANUS_EXPOSED": 1.0,
    "FEMALE_BREAST_EXPOSED": 0.9,
    "BUTTOCKS_EXPOSED": 0.8,
}

_lock = threading.Lock()
_detector = None


def detector():
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                from nudenet import NudeDetector

                _detector = NudeDetector()
    return _detector


@dataclass
class FrameScore:
    second: int
    score: float
    label: str | None


def sample_frames(data: bytes, *, max_frames: int) -> list[tuple[int, np.ndarray]]:
    """One RGB frame from the middle of each second of the video (the frames fingerprints are
    taken from), at most ``max_frames`` of them, evenly spread."""
    frames: list[tuple[int, np.ndarray]] = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        next_second = 0.0
        for frame in container.decode(stream):
            if frame.time is None or frame.time + 1e-6 < next_second + 0.5:
                continue
            frames.append((int(next_second), frame.to_ndarray(format="rgb24")))
            next_second += 1.0
    if len(frames) > max_frames:
        picks = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in sorted(set(picks.tolist()))]
    return frames


def nudity_scores(frames: list[tuple[int, np.ndarray]]) -> list[FrameScore]:
    model = detector()
    out = []
    for second, rgb in frames:
        # NudeNet reads OpenCV's BGR channel order.
        detections = model.detect(np.ascontiguousarray(rgb[..., ::-1]))
        best, label = 0.0, None
        for found in detections:
            weight = EXPLICIT.get(found["class"])
            if weight is not None and found["score"] * weight > best:
                best, label = found["score"] * weight, found["class"]
        out.append(FrameScore(second, round(float(best), 4), label))
    return out


def frame_hashes(frames: list[tuple[int, np.ndarray]]) -> list[SecondHash]:
    out = []
    for second, rgb in frames:
        digest, quality = pdq(rgb)
        if quality >= MIN_QUALITY:
            out.append(SecondHash(second, digest, quality))
    return out
