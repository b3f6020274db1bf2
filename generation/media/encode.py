"""Frames + audio → an H.264/AAC MP4 that plays everywhere a phone plays video.

The output is H.264 (High profile, yuv420p, tagged BT.709 limited range) with stereo AAC at
48 kHz, and ``moov`` before ``mdat`` ("faststart") so players start before the download ends.
libavformat's faststart rewrites the finished file, which it cannot do on a BytesIO, so the
encoder writes a temporary file beside the destination and renames it into place: a crash
mid-encode never leaves a half-written file under the final name.

Audio is fitted to the picture to the frame (``frames * sample_rate / fps`` samples): an engine
that renders a few samples long or short must not make the clip's audio outlast its video.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

# AAC's frame size: feeding whole frames keeps timestamps exact and avoids PyAV re-chunking.
AAC_FRAME = 1024
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")


@dataclass(frozen=True)
class EncodeSettings:
    """How hard the encoder works.

    Measured for a 4 s 720x1280 clip on the 2-core worker (``bench/media_pipeline.py``, best
    of 3): ``veryfast`` CRF 23 took 1.0-1.3 s (75-100 fps) and wrote 0.60-0.69 MB; ``ultrafast``
    CRF 23 took ~0.5 s and wrote 1.6-2x the bytes. At equal bytes (ultrafast at CRF 28-32)
    ``veryfast`` has 0.3 dB (grainy picture) to 1.3 dB (clean CG) higher luma PSNR. A clip is
    encoded once and served many times, so the default spends ~0.6 s of CPU to cut the bytes
    by a third or more; ``ultrafast`` stays one setting away.
    """

    crf: int = 23
    preset: str = "veryfast"
    audio_bitrate: int = 128_000
    # A keyframe every 2 s: feed scrubbing and seeking land close to where the user taps.
    keyframe_interval_s: float = 2.0

    def __post_init__(self):
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be within 0..51, got {self.crf}")
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")


@dataclass(frozen=True)
class EncodedVideo:
    """What was written, read back from the file's own headers."""

    path: Path
    size_bytes: int
    duration_s: float
    width: int
    height: int
    fps: int
    frame_count: int
    video_codec: str
    video_profile: str | None
    pix_fmt: str
    audio_codec: str
    sample_rate: int
    channels: int
    audio_samples: int
    bit_rate: int
    crf: int
    preset: str
    encode_s: float

    def to_dict(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def expected_audio_samples(frame_count: int, *, fps: int, sample_rate: int) -> int:
    return round(frame_count * sample_rate / fps)


def fit_audio(audio: np.ndarray | None, samples: int) -> np.ndarray:
    """Stereo float32 of exactly ``samples`` samples: trimmed, zero-padded, mono duplicated,
    NaNs silenced and clipped to [-1, 1] so a loud engine clips instead of wrapping."""
    if audio is None:
        return np.zeros((2, samples), dtype=np.float32)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[np.newaxis, :]
    if audio.ndim != 2 or audio.shape[0] not in (1, 2):
        raise ValueError(f"audio must be (channels, samples), 1 or 2 channels, got {audio.shape}")
    if audio.shape[0] == 1:
        audio = np.repeat(audio, 2, axis=0)
    fitted = np.zeros((2, samples), dtype=np.float32)
    keep = min(samples, audio.shape[1])
    fitted[:, :keep] = audio[:, :keep]
    np.nan_to_num(fitted, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(fitted, -1.0, 1.0, out=fitted)
    return fitted


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError("frames must be a uint8 numpy array")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames must be (T, H, W, 3) with T >= 1, got {frames.shape}")
    height, width = frames.shape[1:3]
    # yuv420p halves chroma in both directions; x264 refuses odd sizes.
    if height % 2 or width % 2:
        raise ValueError(f"frame size must be even for yuv420p, got {width}x{height}")


def _audio_chunks(audio: np.ndarray, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
    for offset in range(start, stop, AAC_FRAME):
        yield offset, np.ascontiguousarray(audio[:, offset : min(offset + AAC_FRAME, stop)])


def encode_mp4(
    frames: np.ndarray,
    audio: np.ndarray | None,
    out_path: str | os.PathLike,
    *,
    fps: int = 24,
    sample_rate: int = 48_000,
    settings: EncodeSettings | None = None,
) -> EncodedVideo:
    """Encode ``frames`` (uint8 RGB, (T, H, W, 3)) and ``audio`` (float32, (2, N)) to
    ``out_path``. Replaces ``out_path`` atomically; returns what the file holds."""
    settings = settings or EncodeSettings()
    _check_frames(frames)
    if fps <= 0 or sample_rate <= 0:
        raise ValueError("fps and sample_rate must be positive")
    frame_count = frames.shape[0]
    samples = expected_audio_samples(frame_count, fps=fps, sample_rate=sample_rate)
    pcm = fit_audio(audio, samples)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.stem}.", suffix=".mp4", dir=out_path.parent)
    os.close(fd)
    started = time.perf_counter()
    try:
        _write(frames, pcm, tmp_name, fps=fps, sample_rate=sample_rate, settings=settings)
        os.replace(tmp_name, out_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    encode_s = time.perf_counter() - started
    return probe(out_path, crf=settings.crf, preset=settings.preset, encode_s=encode_s)


def _write(
    frames: np.ndarray,
    pcm: np.ndarray,
    path: str,
    *,
    fps: int,
    sample_rate: int,
    settings: EncodeSettings,
) -> None:
    frame_count, height, width = frames.shape[:3]
    samples = pcm.shape[1]
    with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=fps)
        codec = video.codec_context
        codec.width = width
        codec.height = height
        codec.pix_fmt = "yuv420p"
        codec.gop_size = max(1, round(settings.keyframe_interval_s * fps))
        codec.options = {"crf": str(settings.crf), "preset": settings.preset}
        # Tag what the conversion below produces; untagged HD is guessed as BT.709 by most
        # players but as BT.601 by some, which shifts colours.
        codec.colorspace = Colorspace.ITU709
        codec.color_primaries = ColorPrimaries.BT709
        codec.color_trc = ColorTrc.BT709
        codec.color_range = ColorRange.MPEG

        sound = container.add_stream("aac", rate=sample_rate)
        sound.codec_context.layout = "stereo"
        sound.codec_context.bit_rate = settings.audio_bitrate

        video_tb = Fraction(1, fps)
        audio_pos = 0
        for index in range(frame_count):
            picture = av.VideoFrame.from_ndarray(frames[index], format="rgb24").reformat(
                format="yuv420p",
                dst_colorspace=Colorspace.ITU709,
                dst_color_range=ColorRange.MPEG,
            )
            picture.pts = index
            picture.time_base = video_tb
            container.mux(video.encode(picture))
            # Interleave audio up to the end of this frame, so the muxer never holds the
            # whole clip's packets to sort them.
            audio_end = min(samples, round((index + 1) * sample_rate / fps))
            audio_pos = _encode_audio(container, sound, pcm, audio_pos, audio_end, sample_rate)
        _encode_audio(container, sound, pcm, audio_pos, samples, sample_rate)
        container.mux(video.encode(None))
        container.mux(sound.encode(None))


def _encode_audio(container, sound, pcm, start: int, stop: int, sample_rate: int) -> int:
    # Only whole AAC frames until the very end, so every packet but the last is full.
    if stop < pcm.shape[1]:
        stop = start + (stop - start) // AAC_FRAME * AAC_FRAME
    for offset, chunk in _audio_chunks(pcm, start, stop):
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate = sample_rate
        frame.pts = offset
        frame.time_base = Fraction(1, sample_rate)
        container.mux(sound.encode(frame))
    return stop


def probe(
    path: str | os.PathLike, *, crf: int = -1, preset: str = "", encode_s: float = 0.0
) -> EncodedVideo:
    """Read an MP4's headers (no decoding): the facts stored with the clip."""
    path = Path(path)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        sound = container.streams.audio[0]
        frame_count = video.frames
        fps = round(video.average_rate) if video.average_rate else 0
        duration_s = float(video.duration * video.time_base) if video.duration else 0.0
        audio_samples = round((sound.duration or 0) * sound.time_base * sound.rate)
        return EncodedVideo(
            path=path,
            size_bytes=path.stat().st_size,
            duration_s=round(duration_s, 6),
            width=video.codec_context.width,
            height=video.codec_context.height,
            fps=fps,
            frame_count=frame_count,
            video_codec=video.codec_context.name,
            video_profile=video.codec_context.profile,
            pix_fmt=video.codec_context.pix_fmt,
            audio_codec=sound.codec_context.name,
            sample_rate=sound.rate,
            channels=sound.codec_context.channels,
            audio_samples=audio_samples,
            bit_rate=container.bit_rate or 0,
            crf=crf,
            preset=preset,
            encode_s=round(encode_s, 4),
        )
