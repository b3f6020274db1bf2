"""Recording fingerprints: PDQ hashes on a fixed timeline, so a replay is recognised even
re-encoded, rescaled or stripped of metadata.

A fingerprint is ``VERSION`` followed by one 32-byte PDQ hash per ``STEP_S`` of the recording
(four a second: two takes whose timelines are offset by up to an eighth of a second still
hash the same moments). Two recordings of the same person in the same room share their still
moments, so a match is judged on alignment: at one time offset, most of the hashes of the
shorter recording must lie within PDQ's "same picture" distance of the other's, and so must
most of its *moving* hashes (those unlike its resting picture: the head turns). A new take,
with its own turns at its own moments, does not line up that way; a replay does, end to end.
"""

from __future__ import annotations

import numpy as np

from generation.provenance.fingerprint import MATCH_DISTANCE, pdq

VERSION = b"\x01"
HASH_BYTES = 32
STEP_S = 0.25
MAX_SHIFT = 8  # steps: two seconds either way
REPLAY_SHARE = 0.8  # aligned share of hashes that makes a replay
SUSPECT_SHARE = 0.55  # a share this high is left to a person
MIN_HASHES = 8


def fingerprint(frames: np.ndarray, times: np.ndarray) -> bytes:
    if len(frames) == 0:
        return VERSION
    out = [VERSION]
    t = STEP_S / 2
    while t <= times[-1] + STEP_S / 2:
        index = int(np.argmin(np.abs(times - t)))
        out.append(pdq(frames[index])[0])
        t += STEP_S
    return b"".join(out)


def _hashes(fp: bytes) -> np.ndarray:
    if not fp or fp[:1] != VERSION or (len(fp) - 1) % HASH_BYTES:
        raise ValueError("not a recording fingerprint")
    return np.unpackbits(np.frombuffer(fp[1:], np.uint8)).reshape(-1, HASH_BYTES * 8)


def _moving(hashes: np.ndarray) -> np.ndarray:
    """Which hashes show something other than the recording's resting picture (the medoid):
    the head turns. Two takes of one person in one room share the resting picture; only a
    replay also repeats the movement at the same moments."""
    distances = (hashes[:, None, :] != hashes[None, :, :]).sum(axis=2)
    medoid = int(np.argmin(distances.sum(axis=1)))
    return distances[medoid] > MATCH_DISTANCE


def aligned_share(a: bytes, b: bytes) -> float:
    """How much of the shorter recording the other repeats at one time offset: the share of
    its hashes within PDQ's match distance, counted over all of them and over its moving
    ones alone, whichever is lower."""
    ha, hb = _hashes(a), _hashes(b)
    if len(ha) > len(hb):
        ha, hb = hb, ha
    if len(ha) < MIN_HASHES:
        return 0.0
    close = (ha[:, None, :] != hb[None, :, :]).sum(axis=2) <= MATCH_DISTANCE
    moving = _moving(ha)
    rows = np.arange(len(ha))
    best = 0.0
    for shift in range(-MAX_SHIFT, len(hb) - len(ha) + MAX_SHIFT + 1):
        cols = rows + shift
        keep = (cols >= 0) & (cols < len(hb))
        hit = np.zeros(len(ha), bool)
        hit[keep] = close[rows[keep], cols[keep]]
        share = hit.mean()
        if moving.sum() >= 3:
            share = min(share, hit[moving].mean())
        best = max(best, float(share))
    return best


def fingerprints_match(a: bytes, b: bytes) -> bool:
    """Whether ``b`` is a replay of ``a`` (or the other way round)."""
    return aligned_share(a, b) >= REPLAY_SHARE


def judge_replay(fp: bytes, known: list[bytes]) -> tuple[str, str]:
    best = 0.0
    for other in known:
        try:
            best = max(best, aligned_share(fp, other))
        except ValueError:
            continue  # a stored value of another format cannot be compared
    detail = f"Closest earlier recording matches {best:.0%} of this one, aligned."
    if best >= REPLAY_SHARE:
        return "fail", f"This recording replays an earlier one. {detail}"
    if best >= SUSPECT_SHARE:
        return "review", f"This recording resembles an earlier one. {detail}"
    return "pass", detail
