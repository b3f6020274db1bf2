"""The soundtrack's contract: exact length, impacts in time and place, determinism, no clipping."""

from __future__ import annotations

import numpy as np
import pytest

from generation.engines.base import FPS, SAMPLE_RATE, Dialogue
from generation.engines.previs.audio import CEILING, _limit, _sidechain, render_audio
from generation.engines.previs.audio_impacts import collisions

from .conftest import collision, make_plan, rms, window


@pytest.mark.parametrize("frames", [1, 24, 97, 120, 241])
def test_length_matches_the_frame_count_exactly(frames):
    audio, _ = render_audio(make_plan(), [], frames / FPS)
    assert audio.shape == (2, frames * SAMPLE_RATE // FPS)
    assert audio.dtype == np.float32


@pytest.mark.parametrize(
    ("duration", "sample_rate"), [(0.5, 48_000), (4.0, 48_000), (10 / 3, 48_000), (2.5, 44_100)]
)
def test_length_is_duration_times_rate_rounded(duration, sample_rate):
    audio, _ = render_audio(make_plan(), [collision(0.2)], duration, sample_rate=sample_rate)
    assert audio.shape == (2, round(duration * sample_rate))


def test_zero_duration_is_empty_and_negative_is_refused():
    audio, _ = render_audio(make_plan(), [], 0.0)
    assert audio.shape == (2, 0)
    with pytest.raises(ValueError):
        render_audio(make_plan(), [], -1.0)


def test_impact_is_heard_at_its_time():
    audio, _ = render_audio(make_plan(), [collision(1.0, speed=4.0)], 2.0)
    before = rms(window(audio, 0.8, 0.95))
    at = rms(window(audio, 1.0, 1.05))
    assert at > 4 * before  # more than 12 dB above the bed


@pytest.mark.parametrize("screen_x", [-0.9, -0.4, 0.0, 0.5, 1.0])
def test_impact_is_panned_by_screen_position_with_equal_power(screen_x):
    plan = make_plan()
    dry, _ = render_audio(plan, [], 2.0, seed=3)
    wet, _ = render_audio(plan, [collision(1.0, screen_x=screen_x)], 2.0, seed=3)
    impact = window(wet, 0.9, 2.0) - window(dry, 0.9, 2.0)
    left, right = rms(impact[0]), rms(impact[1])
    theta = (screen_x + 1.0) * np.pi / 4.0
    # The beds are identical in both renders, so the difference is the impact alone, and its
    # channel levels follow the equal-power law: L = cos θ, R = sin θ.
    assert right / (left + right) == pytest.approx(
        np.sin(theta) / (np.cos(theta) + np.sin(theta)), abs=2e-3
    )


def test_faster_impacts_are_louder():
    plan = make_plan()
    dry, _ = render_audio(plan, [], 2.0)
    levels = []
    for speed in (0.5, 2.0, 6.0):
        wet, _ = render_audio(plan, [collision(1.0, speed=speed)], 2.0)
        levels.append(rms(window(wet, 1.0, 1.3) - window(dry, 1.0, 1.3)))
    assert levels[0] < levels[1] < levels[2]
    assert levels[2] > 3 * levels[0]


def test_metal_rings_on_while_rubber_thuds():
    plan = make_plan()
    dry, _ = render_audio(plan, [], 2.0)

    def tail_ratio(material):
        wet, _ = render_audio(plan, [collision(0.5, material=material)], 2.0)
        hit = wet.astype(np.float64) - dry
        return rms(window(hit, 0.8, 1.2)) / rms(window(hit, 0.5, 0.55))

    assert tail_ratio("metal") > 20 * tail_ratio("rubber")


def test_same_inputs_and_seed_give_identical_samples():
    plan = make_plan(setting="forest", mood="joyful")
    events = [collision(0.4, speed=3.0, screen_x=-0.3), collision(1.1, speed=1.0, screen_x=0.6)]
    first, first_events = render_audio(plan, events, 3.0, seed=11)
    second, second_events = render_audio(plan, events, 3.0, seed=11)
    other, _ = render_audio(plan, events, 3.0, seed=12)
    assert np.array_equal(first, second)
    assert first_events == second_events
    assert not np.array_equal(first, other)


def test_new_impact_leaves_the_rest_of_the_mix_untouched():
    """Each stem has its own random stream: adding an event must not reshuffle the ambience."""
    plan = make_plan(setting="beach")
    without, _ = render_audio(plan, [], 2.0, seed=5)
    with_hit, _ = render_audio(plan, [collision(1.5, speed=1.0)], 2.0, seed=5)
    assert np.array_equal(
        without[:, : int(1.5 * SAMPLE_RATE)], with_hit[:, : int(1.5 * SAMPLE_RATE)]
    )


def test_loud_pile_up_with_speech_never_clips():
    plan = make_plan(
        mood="epic", setting="street", dialogue=[Dialogue("Look out! It is all falling down!", 0.3)]
    )
    events = [
        collision(0.05 * i, speed=30.0, screen_x=(i % 5) / 2 - 1, material="metal")
        for i in range(80)
    ]
    audio, _ = render_audio(plan, events, 4.0)
    assert np.isfinite(audio).all()
    assert float(np.abs(audio).max()) <= CEILING + 1e-6
    assert CEILING < 1.0


def test_limiter_holds_the_ceiling_and_leaves_quiet_audio_alone():
    rng = np.random.default_rng(0)
    quiet = rng.normal(0.0, 0.05, (2, 48_000))
    assert np.array_equal(_limit(quiet, 48_000, CEILING), quiet)
    loud = quiet.copy()
    loud[:, 10_000:10_050] = 3.0
    loud[1, 30_000] = -7.0
    limited = _limit(loud, 48_000, CEILING)
    assert float(np.abs(limited).max()) <= CEILING
    # Far from the peaks, after the release, the signal is untouched.
    assert np.array_equal(limited[:, 45_000:], quiet[:, 45_000:])


def test_sidechain_ducks_ahead_of_speech_and_releases_after():
    sr = 48_000
    speech = np.zeros((2, 3 * sr))
    speech[:, sr : 2 * sr] = 0.3 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr)
    key = _sidechain(speech, sr)
    assert key[: int(0.8 * sr)].max() == 0.0
    assert key[int(0.99 * sr)] > 0.5  # already ducking just before the first word
    assert key[int(1.1 * sr) : 2 * sr].min() > 0.99
    assert key[-1] < 0.01


def test_collisions_drop_resting_contacts_and_merge_repeats():
    events = [
        collision(0.50, speed=3.0),
        collision(0.51, speed=3.5),  # the same hit spread over two physics steps
        collision(0.70, speed=0.05),  # resting contact
        {**collision(0.52, speed=2.0), "b": "crate"},  # another pair: its own hit
        {"t": 0.6, "type": "speech", "text": "hi", "end": 1.0},
    ]
    kept = collisions(events)
    assert [(e["t"], e["speed"], e["b"]) for e in kept] == [
        (0.5, 3.5, "ground"),
        (0.52, 2.0, "crate"),
    ]
