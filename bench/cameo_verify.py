"""Liveness verifier benchmark: how long one recording takes, and which checks decide what.

Run: ``python -m bench.cameo_verify [--repeat N] [--accuracy]``.

The recording is the tests' own (``tests/cameo/verification/recording.py``): the astronaut
photo turning its head left, right, left after reading six digits with the packaged Piper
voice, 480x640 at 24 fps, about 7 s. Baselines from the same run: the recording's duration
(the verifier's real-time factor) and a plain in-process PyAV decode of the same file (what the
sandboxed decode costs over it). Each stage is timed on its own; times are the best of
``--repeat``.

With ``--accuracy`` every generated case (good, new take, replay, no face, two faces, silent,
no audio track, mirrored, stored sideways, screen re-capture, wrong challenge) is made and
verified once, and a table gives each check's verdict against the verdict it should give.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av

from bench.common import best_of, emit
from cameo.verification.verify import CHECKS

DIGITS = ["4", "7", "1", "9", "0", "2"]
TURNS = ["left", "right", "left"]

# name: (how it is made, challenge override, known recordings, the verdict each check should
# give; checks not named should pass). "review" where the right outcome is a person's look.
CASES = {
    "good": ({}, {}, (), {}),
    "new take": (
        {"digits": list("538860"), "turns": ["right", "left", "right"]},
        {"digits": list("538860"), "turns": ["right", "left", "right"]},
        ("good",),
        {},
    ),
    "replay (0.75x, CRF 30)": (None, {}, ("good",), {"replay": "fail"}),
    "wrong turns and digits": (
        "good",
        {"digits": list("826533"), "turns": ["right", "left", "left"]},
        (),
        {"head_turns": "fail", "digits": "fail"},
    ),
    "no face": (
        {"face": False},
        {},
        (),
        {"face_present": "fail", "single_face": "review", "head_turns": "fail"},
    ),
    "two faces": ({"second_face": True}, {}, (), {"single_face": "fail", "head_turns": "fail"}),
    "silent": ({"speech": False}, {}, (), {"speech_present": "fail", "digits": "fail"}),
    "no audio track": (
        {"audio_track": False},
        {},
        (),
        {"decode": "fail", "speech_present": "fail", "digits": "fail"},
    ),
    "mirrored": ({"mirror": True}, {}, (), {"head_turns": "review"}),
    "stored sideways (phone)": ({"stored_rotation": 90}, {}, (), {}),
    "screen re-capture": ({"screen": True}, {}, (), {"screen": "fail"}),
}


def plain_decode(path: Path) -> int:
    frames = 0
    with av.open(str(path)) as container:
        for _ in container.decode(video=0):
            frames += 1
        for _ in container.decode(audio=0):
            pass
    return frames


def timing(path: Path, repeat: int, lines: list[str]) -> None:
    from cameo.verification import faces, replay, screen, speech, verify_recording
    from cameo.verification.decode import Limits, decode_recording

    limits = Limits()
    plain_s, _ = best_of(repeat, lambda: plain_decode(path))
    decode_s, decoded = best_of(repeat, lambda: decode_recording(str(path), limits))
    duration = decoded.duration
    faces_s, found = best_of(repeat, lambda: faces.detect(decoded.frames, decoded.times))
    turns = faces.find_turns(found, after=1.0)
    end = turns[0].start if turns else duration
    span = decoded.audio[: int(end * decoded.audio_rate)]
    speech.recognise_digits(span, decoded.audio_rate, count=6)  # load the model once
    speech_s, _ = best_of(
        repeat,
        lambda: (
            speech.voice_activity(decoded.audio, decoded.audio_rate, start=0, end=end),
            speech.recognise_digits(span, decoded.audio_rate, count=6),
        ),
    )
    screen_s, _ = best_of(
        repeat,
        lambda: (
            screen.grid_score(decoded.probes),
            screen.banding_score(decoded.frames),
            screen.border_score(decoded.frames),
        ),
    )
    print_s, _ = best_of(repeat, lambda: replay.fingerprint(decoded.frames, decoded.times))
    total_s, result = best_of(
        repeat,
        lambda: verify_recording(str(path), digits=DIGITS, turns=TURNS, known_fingerprints=[]),
    )
    assert result.decision == "pass", result.reasons
    emit(
        lines,
        f"cameo verify: {total_s:.2f} s for a {duration:.1f} s {decoded.width}x{decoded.height} "
        f"recording = {total_s / duration:.2f}x its duration (decision {result.decision})",
    )
    emit(
        lines,
        f"cameo verify sandboxed decode: {decode_s:.2f} s = {decode_s / plain_s:.2f}x a plain "
        f"in-process decode ({plain_s:.2f} s); {len(decoded.frames)} frames sampled",
    )
    emit(
        lines,
        f"cameo verify stages: faces {faces_s:.2f} s ({1000 * faces_s / len(found):.0f} ms/frame), "
        f"speech + digits {speech_s:.2f} s, screen {screen_s:.2f} s, fingerprint {print_s:.2f} s",
    )


def accuracy(work: Path, good: Path, lines: list[str]) -> None:
    from cameo.verification import verify_recording
    from tests.cameo.verification.recording import make_recording, reencode

    paths = {"good": good}
    results = {}
    for name, (made, challenge, known, _) in CASES.items():
        if made is None:
            path = work / "replay.mp4"
            reencode(good, path, scale=0.75, crf=30)
        elif isinstance(made, str):
            path = paths[made]
        elif name == "good":
            path = good
        else:
            path = work / f"{name.replace(' ', '-')}.mp4"
            make_recording(path, **{"digits": DIGITS, "turns": TURNS, **made})
        paths[name] = path
        known_fps = [results[k].fingerprint for k in known]
        results[name] = verify_recording(
            str(path),
            digits=challenge.get("digits", DIGITS),
            turns=challenge.get("turns", TURNS),
            known_fingerprints=known_fps,
        )
    right = dict.fromkeys(CHECKS, 0)
    emit(lines, f"{'case':26} {'decision':9} wrong verdicts (check: got/expected)")
    for name, (_, _, _, expected) in CASES.items():
        got = {r["check"]: r["verdict"] for r in results[name].reasons}
        wrong = []
        for check in CHECKS:
            want = expected.get(check, "pass")
            if got.get(check) == want:
                right[check] += 1
            else:
                wrong.append(f"{check}: {got.get(check)}/{want}")
        emit(lines, f"{name:26} {results[name].decision:9} {', '.join(wrong) or '-'}")
    emit(
        lines,
        "cameo verify per-check accuracy: "
        + ", ".join(f"{c} {right[c]}/{len(CASES)}" for c in CHECKS),
    )


def main(argv: list[str] | None = None) -> list[str]:
    """Prints one line per figure and returns them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--accuracy", action="store_true")
    args = parser.parse_args(argv)
    from tests.cameo.verification.recording import make_recording

    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        good = work / "good.mp4"
        started = time.perf_counter()
        make_recording(good, digits=DIGITS, turns=TURNS)
        print(f"   (recording made in {time.perf_counter() - started:.1f} s)", flush=True)
        timing(good, max(1, args.repeat), lines)
        if args.accuracy:
            accuracy(work, good, lines)
    return lines


if __name__ == "__main__":
    main()
