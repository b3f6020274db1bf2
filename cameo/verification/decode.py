"""The parent side of sandboxed decoding: limits, container sniffing, the child process, and
checking what it hands back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DECODER = Path(__file__).with_name("_decoder.py")


@dataclass(frozen=True)
class Limits:
    """What a recording may be, and what decoding it may cost. Read from settings
    (``CAMEO_MAX_RECORDING_BYTES``, ``CAMEO_VERIFY_*``) where Django's are in use and name
    them; these defaults otherwise."""

    max_bytes: int = 50 * 1024 * 1024
    min_seconds: float = 3.0
    max_seconds: float = 30.0
    max_pixels: int = 3840 * 2160
    timeout_seconds: float = 60.0
    memory_bytes: int = 2 * 1024**3
    sample_fps: float = 10.0
    analysis_longest_side: int = 640
    audio_rate: int = 16_000

    @classmethod
    def from_settings(cls) -> Limits:
        try:
            from django.conf import settings

            # ``configured`` stays false until settings are first read, even when a settings
            # module is named.
            configured = settings.configured or bool(os.environ.get("DJANGO_SETTINGS_MODULE"))
        except ImportError:
            configured = False
        if not configured:
            return cls()
        names = {
            "max_bytes": "CAMEO_MAX_RECORDING_BYTES",
            "min_seconds": "CAMEO_VERIFY_MIN_SECONDS",
            "max_seconds": "CAMEO_VERIFY_MAX_SECONDS",
            "max_pixels": "CAMEO_VERIFY_MAX_PIXELS",
            "timeout_seconds": "CAMEO_VERIFY_TIMEOUT_SECONDS",
            "memory_bytes": "CAMEO_VERIFY_MEMORY_BYTES",
        }
        values = {
            field: getattr(settings, name)
            for field, name in names.items()
            if hasattr(settings, name)
        }
        return cls(**values)


@dataclass
class Decoded:
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB, at most ``analysis_longest_side``
    times: np.ndarray  # (N,) seconds
    audio: np.ndarray | None  # mono float32 at ``audio_rate``; None when there is no audio stream
    audio_rate: int
    probes: np.ndarray | None  # (K, h, w) uint8 full-resolution luma crops
    width: int
    height: int
    duration: float


class DecodeRefused(Exception):
    """The recording cannot be analysed; ``code`` says why."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def sniff_format(path: str) -> str:
    """The demuxer to use, from the file's own magic bytes. Naming the demuxer stops FFmpeg
    from probing its way into formats that open other files or URLs (playlists, concat
    lists) on a hostile upload's say-so."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    raise DecodeRefused("unsupported_format", "The recording must be an MP4, MOV or WebM file.")


def decode_recording(path: str, limits: Limits) -> Decoded:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise DecodeRefused("unreadable", "The recording could not be read.") from exc
    if size == 0:
        raise DecodeRefused("empty", "The recording is empty.")
    if size > limits.max_bytes:
        raise DecodeRefused(
            "too_large", f"The recording is {size} bytes; the limit is {limits.max_bytes}."
        )
    container_format = sniff_format(path)
    params = {
        "format": container_format,
        "max_seconds": limits.max_seconds,
        "max_pixels": limits.max_pixels,
        "max_frames": int(limits.max_seconds * 240) + 240,
        "sample_fps": limits.sample_fps,
        "analysis_longest_side": limits.analysis_longest_side,
        "audio_rate": limits.audio_rate,
        "probe_every_s": 1.0,
        "probe_frames": 6,
        "probe_side": 1024,
        "memory_bytes": limits.memory_bytes,
        "cpu_seconds": max(1, int(limits.timeout_seconds)),
        "output_bytes": 1024**3,
    }
    with tempfile.TemporaryDirectory(prefix="cameo-verify-") as tmp:
        out = Path(tmp)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # One thread per pool: the limits above are per process, and BLAS/OpenMP pools
            # reserve address space per thread.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        try:
            proc = subprocess.run(
                [sys.executable, "-I", str(DECODER), path, str(out), json.dumps(params)],
                capture_output=True,
                timeout=limits.timeout_seconds,
                env=env,
                cwd=tmp,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DecodeRefused(
                "timeout", f"Decoding took longer than {limits.timeout_seconds:g} s."
            ) from exc
        summary_path = out / "summary.json"
        if proc.returncode != 0 or not summary_path.is_file():
            raise DecodeRefused(
                "decoder_crashed",
                f"The decoder stopped on this file (exit status {proc.returncode}).",
            )
        summary = json.loads(summary_path.read_text())
        if "refused" in summary:
            raise DecodeRefused(summary["refused"], summary["message"])
        return _load(out, summary, limits)


def _array(path: Path, *, dtype, ndim: int) -> np.ndarray:
    array = np.load(path, allow_pickle=False)
    if array.dtype != dtype or array.ndim != ndim:
        raise DecodeRefused("decoder_crashed", f"The decoder returned a malformed {path.name}.")
    return array


def _load(out: Path, summary: dict, limits: Limits) -> Decoded:
    frames = _array(out / "frames.npy", dtype=np.uint8, ndim=4)
    times = _array(out / "times.npy", dtype=np.float64, ndim=1)
    if frames.shape[0] != times.shape[0] or frames.shape[-1] != 3:
        raise DecodeRefused("decoder_crashed", "The decoder returned inconsistent frames.")
    if max(frames.shape[1:3]) > limits.analysis_longest_side:
        raise DecodeRefused("decoder_crashed", "The decoder returned oversized frames.")
    audio = None
    if (out / "audio.npy").is_file():
        audio = _array(out / "audio.npy", dtype=np.float32, ndim=1)
    elif summary.get("has_audio"):
        audio = np.zeros(0, np.float32)
    probes = (
        _array(out / "probes.npy", dtype=np.uint8, ndim=3)
        if (out / "probes.npy").is_file()
        else None
    )
    return Decoded(
        frames=frames,
        times=times,
        audio=audio,
        audio_rate=int(summary["audio_rate"]),
        probes=probes,
        width=int(summary["width"]),
        height=int(summary["height"]),
        duration=float(summary["duration"]),
    )
