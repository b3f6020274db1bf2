"""Encoding: frames + audio become a faststart H.264/AAC MP4 whose audio matches its video."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from generation.media.encode import EncodeSettings, encode_mp4, fit_audio
from tests.generation.media.helpers import FPS, RATE, box_order, moving_clip, tone

AAC_FRAME = 1024


def decode(path):
    """(RGB frames, their presentation times in seconds, stereo PCM) of an MP4."""
    with av.open(str(path)) as container:
        frames, times = [], []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(frame.pts * frame.time_base)
    with av.open(str(path)) as container:
        chunks = [frame.to_ndarray() for frame in container.decode(audio=0)]
    return np.stack(frames), times, np.concatenate(chunks, axis=1)


@pytest.fixture(scope="module")
def clip():
    return moving_clip(frames=48)


@pytest.fixture(scope="module")
def encoded(clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("encode") / "clip.mp4"
    # 2 s of video with 2.3 s of audio: the extra must be cut to the frame.
    return encode_mp4(clip, tone(2.3), out, fps=FPS, sample_rate=RATE)


def test_round_trip_keeps_every_frame_size_and_codec(encoded, clip):
    frames, _, pcm = decode(encoded.path)
    assert frames.shape == clip.shape == (48, 144, 256, 3)
    with av.open(str(encoded.path)) as container:
        video, sound = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert sound.codec_context.name == "aac"
        assert sound.rate == RATE
        assert sound.codec_context.channels == 2
    assert pcm.shape[0] == 2


def test_metadata_describes_the_file(encoded):
    assert encoded.frame_count == 48
    assert encoded.fps == FPS
    assert encoded.duration_s == 2.0
    assert (encoded.width, encoded.height) == (256, 144)
    assert encoded.video_codec == "h264"
    assert encoded.video_profile == "High"
    assert encoded.audio_codec == "aac"
    assert (encoded.sample_rate, encoded.channels) == (RATE, 2)
    assert encoded.audio_samples == 2 * RATE
    assert encoded.size_bytes == encoded.path.stat().st_size
    assert encoded.to_dict()["path"] == str(encoded.path)


def test_audio_lasts_as_long_as_the_video(encoded):
    _, _, pcm = decode(encoded.path)
    # AAC pads its last packet to a whole frame; nothing else may differ.
    assert 2 * RATE <= pcm.shape[1] < 2 * RATE + AAC_FRAME


def test_frames_are_timed_at_the_frame_rate(encoded):
    _, times, _ = decode(encoded.path)
    assert times == [Fraction(i, FPS) for i in range(48)]


def test_moov_comes_before_mdat(encoded):
    order = box_order(encoded.path.read_bytes())
    assert order[0] == "ftyp"
    assert order.index("moov") < order.index("mdat")


def test_pixels_survive_encoding(encoded, clip):
    frames, _, _ = decode(encoded.path)
    error = np.abs(frames.astype(np.int16) - clip.astype(np.int16))
    # Measured: 1.7 mean error, every channel about one level dark (swscale's rounding).
    # Converting with BT.601 but tagging BT.709 (or the reverse) measured 7.1 mean error.
    assert error.mean() < 3.5
    assert np.abs(frames.mean(axis=(0, 1, 2)) - clip.mean(axis=(0, 1, 2))).max() < 2.5


def test_short_audio_is_padded_with_silence_and_keeps_its_channels(clip, tmp_path):
    # 1 s of a left-only tone under 2 s of video.
    encoded = encode_mp4(clip, tone(1.0, right=False), tmp_path / "short.mp4")
    _, _, pcm = decode(encoded.path)
    assert 2 * RATE <= pcm.shape[1] < 2 * RATE + AAC_FRAME

    def rms(samples):
        return float(np.sqrt((samples**2).mean()))

    assert rms(pcm[0, 2048:40_000]) == pytest.approx(0.25 / np.sqrt(2), rel=0.1)
    assert rms(pcm[0, 60_000:90_000]) < 0.01
    assert rms(pcm[1]) < 0.01


def test_silent_track_when_there_is_no_audio(clip, tmp_path):
    encoded = encode_mp4(clip[:24], None, tmp_path / "silent.mp4")
    _, _, pcm = decode(encoded.path)
    assert encoded.audio_codec == "aac"
    assert pcm.shape[0] == 2 and RATE <= pcm.shape[1] < RATE + AAC_FRAME
    assert np.abs(pcm).max() == 0.0


def test_replaces_the_destination_and_leaves_no_temporary_files(clip, tmp_path):
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"old")
    encode_mp4(clip[:12], None, out, settings=EncodeSettings(preset="ultrafast"))
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    assert out.read_bytes()[4:8] == b"ftyp"


def test_a_failed_encode_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError, match="even"):
        encode_mp4(np.zeros((4, 15, 16, 3), np.uint8), None, tmp_path / "odd.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((4, 16, 16, 3), np.float32),
        np.zeros((16, 16, 3), np.uint8),
        np.zeros((0, 16, 16, 3), np.uint8),
        np.zeros((4, 16, 16, 4), np.uint8),
    ],
)
def test_rejects_frames_that_are_not_uint8_rgb_clips(frames, tmp_path):
    with pytest.raises(ValueError):
        encode_mp4(frames, None, tmp_path / "bad.mp4")


def test_settings_reject_unknown_presets_and_crf():
    with pytest.raises(ValueError):
        EncodeSettings(preset="placebo-ish")
    with pytest.raises(ValueError):
        EncodeSettings(crf=60)


def test_fit_audio_trims_pads_duplicates_mono_and_clips():
    mono = np.array([0.5, 2.0, np.nan, -3.0], dtype=np.float32)
    fitted = fit_audio(mono, 6)
    assert fitted.shape == (2, 6)
    assert fitted.dtype == np.float32
    assert fitted[0].tolist() == [0.5, 1.0, 0.0, -1.0, 0.0, 0.0]
    assert fitted[1].tolist() == fitted[0].tolist()
    assert fit_audio(np.ones((2, 10), np.float32), 3).shape == (2, 3)
    with pytest.raises(ValueError):
        fit_audio(np.zeros((3, 10), np.float32), 10)
