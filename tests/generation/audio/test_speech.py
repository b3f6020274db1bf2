"""Dialogue: spoken by the packaged Piper voice at its marked time, and nowhere else."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from generation.engines.base import SAMPLE_RATE, Dialogue
from generation.engines.previs import audio
from generation.engines.previs.audio import (
    AMBIENCE_DUCK_DB,
    MUSIC_DUCK_DB,
    _render_speech,
    render_audio,
)
from generation.engines.previs.audio_dsp import resample
from generation.engines.previs.audio_voice import (
    Voice,
    VoiceUnavailableError,
    _packaged_voice_paths,
)

from .conftest import band_energy, make_plan, rms, window

LINE = "What a beautiful evening"


@pytest.fixture(scope="module")
def spoken():
    plan = make_plan(dialogue=[Dialogue(f'"{LINE}"', 1.5)])
    with_line, events = render_audio(plan, [], 4.0, seed=2)
    without, _ = render_audio(make_plan(), [], 4.0, seed=2)
    return with_line, without, events


def test_speech_event_reports_the_line_and_its_span(spoken):
    _, _, events = spoken
    assert len(events) == 1
    event = events[0]
    assert event["type"] == "speech"
    assert event["text"] == LINE  # quotes from the prompt are not spoken
    assert event["t"] == 1.5
    assert event["truncated"] is False
    assert 0.6 < event["spoken_s"] < 2.0
    assert event["end"] == pytest.approx(1.5 + event["spoken_s"], abs=1e-3)


def test_speech_is_heard_at_its_time_in_the_speech_band(spoken):
    with_line, without, events = spoken
    start, end = events[0]["t"], events[0]["end"]
    speaking = band_energy(window(with_line, start, end), 300, 3400)
    bed_alone = band_energy(window(without, start, end), 300, 3400)
    before = band_energy(window(with_line, start - (end - start) - 0.2, start - 0.2), 300, 3400)
    assert speaking > 10 * bed_alone
    assert speaking > 10 * before


def test_speech_is_absent_elsewhere(spoken):
    with_line, without, events = spoken
    start, end = events[0]["t"], events[0]["end"]
    difference = with_line.astype(np.float64) - without
    # Before the side-chain's 60 ms look-ahead the two renders are sample-identical.
    assert np.abs(window(difference, 0.0, start - 0.1)).max() == 0.0
    # After the line and the ducking's release, only a vanishing trace of the release remains.
    spoken_energy = band_energy(window(difference, start, end), 300, 3400)
    after = band_energy(window(difference, end + 0.8, 4.0), 300, 3400)
    assert after < spoken_energy * 1e-4


def test_music_and_ambience_duck_under_speech(spoken):
    with_line, without, events = spoken
    start, end = events[0]["t"], events[0]["end"]
    speech, _ = _render_speech(
        make_plan(dialogue=[Dialogue(LINE, start)]), 4 * SAMPLE_RATE, SAMPLE_RATE
    )
    bed_under_speech = with_line.astype(np.float64) - speech
    ratio = rms(window(bed_under_speech, start + 0.3, end - 0.1)) / rms(
        window(without, start + 0.3, end - 0.1)
    )
    # Fully ducked: ambience down AMBIENCE_DUCK_DB, music down MUSIC_DUCK_DB, the mix in between.
    assert 10 ** (-MUSIC_DUCK_DB / 20) - 0.01 < ratio < 10 ** (-AMBIENCE_DUCK_DB / 20) + 0.01


def test_a_line_too_long_for_the_clip_is_cut_and_says_so():
    plan = make_plan(
        dialogue=[
            Dialogue("This sentence is far too long to fit in what is left of the clip.", 1.5),
            Dialogue("Too late.", 2.5),
        ]
    )
    audio_out, events = render_audio(plan, [], 2.0)
    assert audio_out.shape == (2, 2 * SAMPLE_RATE)
    assert [(e["t"], e["end"], e["truncated"]) for e in events] == [
        (1.5, 2.0, True),
        (2.5, 2.5, True),
    ]
    assert events[0]["spoken_s"] == 0.5
    assert events[1]["spoken_s"] == 0.0


def test_speech_is_deterministic():
    plan = make_plan(dialogue=[Dialogue("Again and again.", 0.2)])
    first, _ = render_audio(plan, [], 1.5, seed=4)
    audio.VOICE._cache.clear()  # synthesise afresh, not from the cache
    second, _ = render_audio(plan, [], 1.5, seed=4)
    assert np.array_equal(first, second)


def test_voice_loads_once_across_threads():
    loads = []

    def paths():
        loads.append(threading.get_ident())
        return _packaged_voice_paths()

    voice = Voice(paths)
    barrier = threading.Barrier(4)
    results = []

    def load():
        barrier.wait()
        results.append(voice.load())

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1
    assert len(results) == 4
    assert all(r is results[0] for r in results)


def test_missing_voice_is_a_clear_error_not_silence(tmp_path, monkeypatch):
    broken = Voice(lambda: (tmp_path / "gone.onnx", tmp_path / "gone.onnx.json"))
    with pytest.raises(VoiceUnavailableError, match="missing"):
        broken.load()
    monkeypatch.setattr(audio, "VOICE", broken)
    with pytest.raises(VoiceUnavailableError):
        render_audio(make_plan(dialogue=[Dialogue("Hello.", 0.1)]), [], 1.0)
    # A clip without dialogue never needs the voice.
    silent, events = render_audio(make_plan(), [], 1.0)
    assert events == []
    assert silent.shape == (2, SAMPLE_RATE)


def test_resampling_keeps_pitch_and_duration():
    rate = 22_050
    tone = np.sin(2 * np.pi * 1000.0 * np.arange(rate) / rate)
    out = resample(tone, rate, SAMPLE_RATE)
    assert out.size == SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    assert np.fft.rfftfreq(out.size, 1 / SAMPLE_RATE)[spectrum.argmax()] == 1000.0
