"""The verifier end to end, on recordings made from a real face photo and a real voice.

Every check passes on a good recording; each bad recording is refused or sent to a person by
the check that is about it, and never passes.
"""

import io
import wave

import numpy as np
import pytest

from cameo.verification import fingerprints_match, verify_recording
from cameo.verification.verify import CHECKS
from tests.cameo.verification.conftest import DIGITS, TURNS


@pytest.fixture(scope="session")
def verified(recording):
    results = {}

    def get(name, *, digits=DIGITS, turns=TURNS, known=()):
        key = (name, tuple(digits), tuple(turns), tuple(known))
        if key not in results:
            known_fps = [get(k).fingerprint for k in known]
            results[key] = verify_recording(
                recording(name),
                digits=list(digits),
                turns=list(turns),
                known_fingerprints=known_fps,
            )
        return results[key]

    return get


def verdicts(result) -> dict[str, str]:
    return {r["check"]: r["verdict"] for r in result.reasons}


def test_good_recording_passes_every_check(verified):
    result = verified("good")
    assert verdicts(result) == dict.fromkeys(CHECKS, "pass"), result.reasons
    assert result.decision == "pass"
    assert all(set(r) >= {"check", "ok", "detail"} and r["ok"] is True for r in result.reasons)


def test_good_recording_yields_frontal_reference_crops_and_voice(verified):
    result = verified("good")
    assert 1 <= len(result.reference_frames) <= 3
    for crop in result.reference_frames:
        assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    with wave.open(io.BytesIO(result.voice_sample)) as voice:
        assert (voice.getnchannels(), voice.getsampwidth(), voice.getframerate()) == (1, 2, 16000)
        # Six digits read aloud: a couple of seconds, not the whole recording.
        assert 1.5 < voice.getnframes() / 16000 < 3.5


def test_reference_crops_are_faces_seen_from_the_front(verified):
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    for crop in verified("good").reference_frames:
        gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        assert len(cascade.detectMultiScale(gray, 1.1, 4, minSize=(100, 100))) == 1


def test_turns_in_another_order_and_wrong_digits_fail(verified):
    result = verified(
        "good", digits=["8", "2", "6", "5", "3", "3"], turns=["right", "left", "left"]
    )
    v = verdicts(result)
    assert v["head_turns"] == "fail"
    assert v["digits"] == "fail"
    assert result.decision == "fail"
    assert "the challenge was right, left, left" in _detail(result, "head_turns")


def test_one_digit_misheard_goes_to_review_not_pass(verified):
    result = verified("good", digits=["4", "7", "1", "9", "0", "8"])
    assert verdicts(result)["digits"] == "review"
    assert result.decision == "review"


def test_a_replay_reencoded_and_rescaled_is_refused(verified):
    result = verified("replay", known=("good",))
    assert verdicts(result)["replay"] == "fail"
    assert result.decision == "fail"
    # Everything else about it is fine: the fingerprint alone catches it.
    assert [c for c, v in verdicts(result).items() if v != "pass"] == ["replay"]


def test_a_new_take_by_the_same_person_is_not_a_replay(verified):
    retake = verified(
        "retake",
        digits=["5", "3", "8", "8", "6", "0"],
        turns=["right", "left", "right"],
        known=("good",),
    )
    assert verdicts(retake)["replay"] == "pass", _detail(retake, "replay")
    assert retake.decision == "pass"
    assert not fingerprints_match(verified("good").fingerprint, retake.fingerprint)


def test_fingerprint_matching_is_symmetric_and_recognises_the_replay(verified):
    good, replay = verified("good").fingerprint, verified("replay", known=("good",)).fingerprint
    assert fingerprints_match(good, replay) and fingerprints_match(replay, good)
    assert fingerprints_match(good, good)
    # Compact: one 32-byte hash per quarter second.
    assert len(good) < 32 * 4 * 10


def test_a_phone_recording_stored_sideways_is_turned_upright_and_passes(verified):
    """Phones store landscape frames with a display rotation; read raw, the face would lie on
    its side and no cascade would find it."""
    result = verified("sideways")
    assert verdicts(result) == dict.fromkeys(CHECKS, "pass"), result.reasons
    assert "480x640" in _detail(result, "decode")


def test_no_face_fails(verified):
    result = verified("no_face")
    assert verdicts(result)["face_present"] == "fail"
    assert result.decision == "fail"
    assert result.reference_frames == []


def test_two_faces_fail(verified):
    result = verified("two_faces")
    assert verdicts(result)["single_face"] == "fail"
    assert result.decision == "fail"


def test_silence_fails_speech_and_digits(verified):
    result = verified("silent")
    v = verdicts(result)
    assert v["speech_present"] == "fail" and v["digits"] == "fail"
    assert v["head_turns"] == "pass"
    assert result.decision == "fail"
    assert result.voice_sample is None


def test_no_audio_stream_fails(verified):
    result = verified("no_audio")
    v = verdicts(result)
    assert v["decode"] == "fail" and v["speech_present"] == "fail"
    assert result.decision == "fail"


def test_a_mirrored_recording_goes_to_review(verified):
    result = verified("mirrored")
    assert verdicts(result)["head_turns"] == "review"
    assert "mirror" in _detail(result, "head_turns")
    assert result.decision == "review"


def test_a_recording_of_a_screen_fails(verified):
    result = verified("screen")
    assert verdicts(result)["screen"] == "fail"
    assert result.decision == "fail"


def _detail(result, check):
    return next(r["detail"] for r in result.reasons if r["check"] == check)
