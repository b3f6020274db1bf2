"""Per-second PDQ fingerprints of clips, and the band keys that index them.

A clip's fingerprint is the PDQ hash (256 bits) of one frame per second. PDQ survives
re-encoding, resizing and frame-rate changes, so a copy of a clip, stripped of its metadata,
still hashes within a small Hamming distance of the original.

Lookup without scanning every clip (multi-index hashing): a hash is cut into 16 bands of 16
bits. Two hashes within distance 31 differ in at most one bit in at least one band (pigeonhole:
32 differing bits would be needed to spoil every band), so probing each band's value and its 16
one-bit neighbours finds every match within ``MATCH_DISTANCE``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np
import pdqhash

BANDS = 16
BAND_BITS = 16
MATCH_DISTANCE = 31  # PDQ's usual threshold for "same picture"
MIN_QUALITY = 50  # flat frames (black, one colour) hash unreliably; they are not indexed


@dataclass(frozen=True)
class SecondHash:
    second: int
    hash: bytes  # 32 bytes
    quality: int


def pdq(frame: np.ndarray) -> tuple[bytes, int]:
    bits, quality = pdqhash.compute(np.ascontiguousarray(frame, dtype=np.uint8))
    return np.packbits(bits.astype(np.uint8)).tobytes(), int(quality)


def fingerprint_frames(frames: np.ndarray, fps: int) -> list[SecondHash]:
    """One hash per whole or started second, from the frame in the middle of it."""
    seconds = int(np.ceil(len(frames) / fps))
    out = []
    for second in range(seconds):
        index = min(len(frames) - 1, int((second + 0.5) * fps))
        digest, quality = pdq(frames[index])
        out.append(SecondHash(second, digest, quality))
    return out


def fingerprint_video(data: bytes, *, max_seconds: int = 600) -> list[SecondHash]:
    """Hashes of an encoded video, one per second of its timeline (by frame timestamps, so
    any frame rate works)."""
    out: list[SecondHash] = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        next_second = 0.0
        for frame in container.decode(stream):
            if frame.time is None or frame.time + 1e-6 < next_second + 0.5:
                continue
            digest, quality = pdq(frame.to_ndarray(format="rgb24"))
            out.append(SecondHash(int(next_second), digest, quality))
            next_second += 1.0
            if next_second >= max_seconds:
                break
    return out


def bands(digest: bytes) -> list[int]:
    """The 16 band values of a hash."""
    words = np.frombuffer(digest, dtype=">u2")
    return [int(w) for w in words]


def band_codes(digest: bytes) -> list[int]:
    """The bands as the index stores them: ``band << 16 | value``."""
    return [(band << BAND_BITS) | value for band, value in enumerate(bands(digest))]


def probe_codes(digest: bytes, *, radius: int = 1) -> list[int]:
    """:func:`probes` as index codes: each band's value, and with ``radius=1`` its one-bit
    neighbours too (17x the probes: every match within 31 bits instead of within 15)."""
    if radius == 0:
        return band_codes(digest)
    return [(band << BAND_BITS) | value for band, value in probes(digest)]


def probes(digest: bytes) -> list[tuple[int, int]]:
    """(band, value) pairs to look up: every band's value and its one-bit neighbours."""
    out = []
    for band, value in enumerate(bands(digest)):
        out.append((band, value))
        out.extend((band, value ^ (1 << bit)) for bit in range(BAND_BITS))
    return out


def distance(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())
