"""Ambience follows the setting and time of day; the music bed follows the mood and the shots."""

from __future__ import annotations

import numpy as np

from generation.engines.base import SAMPLE_RATE, Shot
from generation.engines.previs.audio import render_audio
from generation.engines.previs.audio_ambience import render_ambience
from generation.engines.previs.audio_dsp import stream_rng
from generation.engines.previs.audio_music import intensity_curve, score_for

from .conftest import band_energy, make_plan, rms

N = 3 * SAMPLE_RATE


def ambience(setting: str, time_of_day: str = "day") -> np.ndarray:
    return render_ambience(setting, time_of_day, N, SAMPLE_RATE, stream_rng(0, "ambience"))


def share(x: np.ndarray, low: float, high: float) -> float:
    return band_energy(x, low, high) / band_energy(x, 0, SAMPLE_RATE / 2)


def test_beach_surf_is_broadband_while_space_is_a_low_drone():
    beach, space = ambience("beach"), ambience("space")
    assert share(beach, 1000, 12000) > 0.1
    assert share(space, 1000, 12000) < 0.001
    assert share(space, 20, 200) > 0.9
    assert share(beach, 20, 200) < 0.6


def test_settings_differ_in_the_whole_mix_too():
    beach, _ = render_audio(make_plan(setting="beach"), [], 3.0)
    space, _ = render_audio(make_plan(setting="space"), [], 3.0)
    assert share(beach, 1000, 12000) > 1.5 * share(space, 1000, 12000)


def tonality(x: np.ndarray, low: float, high: float) -> float:
    """Strongest spectral line over the median bin in a band: high for sung tones, low for noise."""
    spectrum = np.abs(np.fft.rfft(x.mean(axis=0))) ** 2
    freqs = np.fft.rfftfreq(x.shape[1], 1.0 / SAMPLE_RATE)
    band = spectrum[(freqs >= low) & (freqs < high)]
    return float(band.max() / np.median(band))


def test_night_is_quieter_but_brings_crickets():
    day, night = ambience("forest", "day"), ambience("forest", "night")
    assert rms(night) < rms(day)
    # Field crickets sing steady tones at 3.8-5.2 kHz; wind, leaves and swept bird chirps don't.
    assert tonality(night, 3700, 5300) > 5 * tonality(day, 3700, 5300)
    assert tonality(ambience("studio", "night"), 3700, 5300) < 100


def test_every_setting_has_a_bed_and_unknown_ones_fall_back():
    for setting in ("beach", "forest", "street", "space", "studio", "desert", "snow", "lagoon"):
        bed = ambience(setting)
        assert bed.shape == (2, N)
        assert 1e-4 < rms(bed) < 0.1, setting


def test_mood_chooses_mode_and_tempo():
    assert score_for("joyful").scale[2] == 4  # major third
    assert score_for("melancholy").scale[2] == 3  # minor third
    assert score_for("tense").scale[2] == 3
    assert score_for("joyful").bpm > score_for("calm").bpm
    assert score_for("sad") is score_for("melancholy")
    assert score_for("no-such-mood") is score_for("calm")


def test_music_is_in_a_key_of_its_mood_with_the_right_third():
    """Most of the bed's energy lies on the scale of one of the mood's keys, and that key's
    third is major for a joyful mood and minor for a melancholy one."""

    def chroma(mood: str) -> np.ndarray:
        music, _ = render_audio(make_plan(setting="studio", mood=mood), [], 4.0)
        spectrum = np.abs(np.fft.rfft(music.mean(axis=0).astype(np.float64))) ** 2
        freqs = np.fft.rfftfreq(music.shape[1], 1 / SAMPLE_RATE)
        keep = (freqs > 60) & (freqs < 2000)
        pcs = np.round(12 * np.log2(freqs[keep] / 440.0) + 9).astype(int) % 12  # C = 0
        energy = np.bincount(pcs, weights=spectrum[keep], minlength=12)
        return energy / energy.sum()

    for mood, third, other in (("joyful", 4, 3), ("melancholy", 3, 4)):
        score = score_for(mood)
        energy = chroma(mood)
        fits = {k: sum(energy[(k + step) % 12] for step in score.scale) for k in score.keys}
        tonic = max(fits, key=fits.get)
        assert fits[tonic] > 0.85, (mood, fits)
        assert energy[(tonic + third) % 12] > 3 * energy[(tonic + other) % 12], mood


def test_intensity_rises_through_the_shots_and_swells_to_the_end():
    plan = make_plan(shots=[Shot(1.5, "static"), Shot(1.5, "pan"), Shot(1.0, "crane")])
    curve = intensity_curve(plan, 4.0)
    at = lambda t: curve[int(t * 200)]  # noqa: E731
    assert at(0.5) < at(2.2) < at(3.5)
    assert curve.min() >= 0.1
    assert curve.max() <= 1.0
