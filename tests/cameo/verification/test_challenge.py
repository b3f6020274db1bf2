"""Challenges and the verdict rules that do not need a recording."""

from collections import Counter

import numpy as np

from cameo.verification import challenge_new
from cameo.verification.faces import Turn, compare_turns
from cameo.verification.speech import judge_digits, judge_speech, voice_activity


def test_challenge_shape():
    challenge = challenge_new()
    assert set(challenge) == {"digits", "turns", "instructions"}
    assert len(challenge["digits"]) == 6
    assert all(
        isinstance(d, str) and d in "0123456789" and len(d) == 1 for d in challenge["digits"]
    )
    assert len(challenge["turns"]) == 3
    assert set(challenge["turns"]) <= {"left", "right"}
    assert " ".join(challenge["digits"]) in challenge["instructions"]
    for turn in challenge["turns"]:
        assert f"to your {turn}" in challenge["instructions"]


def test_challenges_are_random():
    drawn = [challenge_new() for _ in range(400)]
    readings = {"".join(c["digits"]) for c in drawn}
    assert len(readings) >= 395  # a million possibilities; repeats among 400 are rare
    digits = Counter(d for c in drawn for d in c["digits"])
    assert set(digits) == set("0123456789")
    orders = Counter(tuple(c["turns"]) for c in drawn)
    assert len(orders) == 8


def turns(*directions):
    return [Turn(start=i, end=i + 0.5, direction=d, evidence={}) for i, d in enumerate(directions)]


def test_turn_order_rules():
    wanted = ["left", "right", "left"]
    assert compare_turns(turns("left", "right", "left"), wanted)[0] == "pass"
    assert compare_turns(turns("right", "left", "right"), wanted)[0] == "review"  # mirrored
    assert compare_turns(turns("left", None, "left"), wanted)[0] == "review"
    assert compare_turns(turns("left", "left", "left"), wanted)[0] == "fail"
    assert compare_turns(turns("right", None, "left"), wanted)[0] == "fail"
    assert compare_turns(turns("left", "right"), wanted)[0] == "fail"
    assert compare_turns([], wanted)[0] == "fail"


def test_digit_rules():
    wanted = list("471902")
    assert judge_digits(list("471902"), wanted)[0] == "pass"
    assert judge_digits(list("471903"), wanted)[0] == "review"
    assert judge_digits(list("888888"), wanted)[0] == "fail"
    assert judge_digits(None, wanted)[0] == "review"


def test_voice_activity_ignores_noise_and_hum_and_finds_syllables():
    rate = 16000
    rng = np.random.default_rng(0)
    t = np.arange(3 * rate) / rate
    hiss = rng.standard_normal(t.size).astype(np.float32) * 0.05
    hum = (0.3 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    assert voice_activity(hiss, rate, start=0, end=3).voiced_s == 0
    assert voice_activity(hum, rate, start=0, end=3).voiced_s == 0
    # Four voiced "syllables": a 140 Hz buzz with formant-like harmonics, 250 ms each.
    voiced = np.zeros(t.size, np.float32)
    for k in range(4):
        span = (t >= 0.3 + 0.6 * k) & (t < 0.55 + 0.6 * k)
        voiced[span] = sum(np.sin(2 * np.pi * 140 * h * t[span]) / h for h in range(1, 20))
    found = voice_activity(0.2 * voiced + 0.002 * hiss, rate, start=0, end=3)
    assert len(found.bursts) == 4
    assert judge_speech(found, 4)[0] == "pass"
    # Outside the span where digits are expected, speech does not count.
    assert voice_activity(0.2 * voiced, rate, start=2.5, end=3).bursts == []
