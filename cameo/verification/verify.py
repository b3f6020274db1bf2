"""The liveness verifier: one recording against its challenge.

Each check gives a verdict: ``pass``, ``fail`` (the recording is refused) or ``review`` (it
cannot be decided here and goes to a person). The recording passes only when every check
passes; any failure fails it; otherwise it goes to review. Nothing undecidable passes.

The recording is expected in two parts, which the challenge's instructions ask for: first the
digits read aloud facing the camera, then the head turns, each back to the camera before the
next. The digits' span is therefore everything before the first turn.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field

import numpy as np

from cameo.verification import faces as face_checks
from cameo.verification import replay, screen, speech
from cameo.verification.decode import Decoded, DecodeRefused, Limits, decode_recording

PASS, FAIL, REVIEW = "pass", "fail", "review"
# Every check a decodable recording gets a verdict from, in the order they are reported.
CHECKS = (
    "decode",
    "replay",
    "face_present",
    "single_face",
    "head_turns",
    "speech_present",
    "digits",
    "screen",
)
FACE_PRESENT_PASS = 0.7
FACE_PRESENT_FAIL = 0.3
MULTIPLE_FAIL = 0.2
MULTIPLE_REVIEW = 0.05
VOICE_PAD_S = 0.15


@dataclass
class VerificationResult:
    decision: str  # "pass" | "fail" | "review"
    reasons: list[dict] = field(default_factory=list)  # {check, ok, verdict, detail}
    fingerprint: bytes = replay.VERSION
    reference_frames: list[np.ndarray] = field(default_factory=list)
    voice_sample: bytes | None = None


class _Reasons(list):
    def add(self, check: str, verdict: str, detail: str) -> None:
        self.append({"check": check, "ok": verdict == PASS, "verdict": verdict, "detail": detail})

    def decision(self) -> str:
        verdicts = {r["verdict"] for r in self}
        if FAIL in verdicts:
            return FAIL
        if REVIEW in verdicts or not self:
            return REVIEW
        return PASS


def verify_recording(
    path: str,
    *,
    digits: list[str],
    turns: list[str],
    known_fingerprints: list[bytes],
    limits: Limits | None = None,
) -> VerificationResult:
    limits = limits or Limits.from_settings()
    reasons = _Reasons()
    try:
        decoded = decode_recording(path, limits)
    except DecodeRefused as exc:
        reasons.add("decode", FAIL, f"{exc} ({exc.code})")
        return VerificationResult(decision=FAIL, reasons=reasons)
    if not _check_container(decoded, limits, reasons):
        return VerificationResult(decision=FAIL, reasons=reasons)

    fingerprint = replay.fingerprint(decoded.frames, decoded.times)
    reasons.add("replay", *replay.judge_replay(fingerprint, known_fingerprints))

    found = face_checks.detect(decoded.frames, decoded.times)
    people = face_checks.count_people(found)
    reasons.add("face_present", *_judge_presence(people))
    reasons.add("single_face", *_judge_single(people))

    # The digits come first, facing the camera; the turns after them.
    # A face lost in the first second is someone settling in front of the camera, not a turn.
    observed = face_checks.find_turns(found, after=min(1.0, decoded.duration / 4))
    digits_end = decoded.duration
    if observed and any(f.frontal for f in found if f.time < observed[0].start):
        digits_end = observed[0].start
    # else nobody faced the camera first: there is no reading span to tell apart, and speech
    # anywhere is weighed (the face checks already refuse such a recording).
    reasons.add("head_turns", *face_checks.compare_turns(observed, list(turns)))

    voice = None
    if decoded.audio is None:
        reasons.add("speech_present", FAIL, "The recording has no sound.")
        reasons.add("digits", FAIL, "The recording has no sound.")
    else:
        heard = speech.voice_activity(decoded.audio, decoded.audio_rate, start=0.0, end=digits_end)
        verdict, detail = speech.judge_speech(heard, len(digits))
        reasons.add("speech_present", verdict, detail)
        if verdict == FAIL:
            reasons.add("digits", FAIL, "No digits were read aloud.")
        else:
            span = decoded.audio[: int(digits_end * decoded.audio_rate)]
            said = speech.recognise_digits(span, decoded.audio_rate, count=len(digits))
            reasons.add("digits", *speech.judge_digits(said, list(digits)))
            voice = _wav(decoded, heard)

    grid = screen.grid_score(decoded.probes)
    banding = screen.banding_score(decoded.frames)
    border = screen.border_score(decoded.frames)
    reasons.add("screen", *screen.judge_screen(grid=grid, banding=banding, border=border))

    return VerificationResult(
        decision=reasons.decision(),
        reasons=reasons,
        fingerprint=fingerprint,
        reference_frames=face_checks.reference_frames(decoded.frames, found, until=digits_end),
        voice_sample=voice,
    )


def _check_container(decoded: Decoded, limits: Limits, reasons: _Reasons) -> bool:
    if decoded.duration < limits.min_seconds:
        reasons.add(
            "decode",
            FAIL,
            f"The recording is {decoded.duration:.1f} s; at least {limits.min_seconds:g} s needed.",
        )
        return False
    if decoded.audio is None:
        # Still analysed: the report then says everything that is wrong, not just the first.
        reasons.add("decode", FAIL, "The recording has video but no audio stream.")
        return True
    reasons.add(
        "decode",
        PASS,
        f"{decoded.width}x{decoded.height}, {decoded.duration:.1f} s, with audio.",
    )
    return True


def _judge_presence(people: dict) -> tuple[str, str]:
    share = people["present"]
    detail = f"A face in {share:.0%} of {people['frames']} sampled frames."
    if share >= FACE_PRESENT_PASS:
        return PASS, detail
    if share < FACE_PRESENT_FAIL:
        return FAIL, detail
    return REVIEW, detail


def _judge_single(people: dict) -> tuple[str, str]:
    share = people["multiple"]
    if people["present"] < FACE_PRESENT_FAIL:
        return REVIEW, "Too few faces to tell how many people are in the recording."
    detail = f"More than one face in {share:.0%} of sampled frames."
    if share >= MULTIPLE_FAIL:
        return FAIL, detail
    if share >= MULTIPLE_REVIEW:
        return REVIEW, detail
    return PASS, detail


def _wav(decoded: Decoded, heard: speech.Speech) -> bytes | None:
    """The spoken digits as 16-bit mono WAV: from the first burst to the last, padded."""
    if not heard.bursts or decoded.audio is None:
        return None
    rate = decoded.audio_rate
    start = max(0, int((heard.bursts[0][0] - VOICE_PAD_S) * rate))
    end = min(decoded.audio.size, int((heard.bursts[-1][1] + VOICE_PAD_S) * rate))
    pcm = (np.clip(decoded.audio[start:end], -1.0, 1.0) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    return out.getvalue()
