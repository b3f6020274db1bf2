"""The previs soundtrack: impacts, ambience, a music bed and spoken dialogue, mixed to picture.

Four stems are rendered independently, each from its own random stream derived from the seed (so
a new impact never changes the surf), then mixed: music and ambience duck under speech the way a
broadcast side-chain compressor would, and a look-ahead limiter keeps the sum below the ceiling.
The result is float32 stereo of exactly ``round(duration_s * sample_rate)`` samples, which at the
engine's 24 fps and 48 kHz is 2000 samples per frame, so sound and picture stay frame-locked.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from generation.engines.base import SAMPLE_RATE, ScenePlan

from .audio_ambience import render_ambience
from .audio_dsp import add_at, db, stream_rng
from .audio_impacts import render_impacts
from .audio_music import render_music
from .audio_voice import VOICE, VoiceUnavailableError

__all__ = ["CEILING", "VoiceUnavailableError", "render_audio"]

# -1 dBFS leaves room for the overshoot AAC encoding adds to peaks, so the MP4 never clips either.
CEILING = db(-1.0)
MUSIC_DUCK_DB = 11.0
AMBIENCE_DUCK_DB = 6.0
SPEECH_GAIN = db(-1.0)
EDGE_FADE_S = 0.004  # clips loop in the feed: no click where the end meets the start


def render_audio(
    plan: ScenePlan,
    events: list[dict[str, Any]],
    duration_s: float,
    sample_rate: int = SAMPLE_RATE,
    seed: int = 0,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Render the clip's soundtrack.

    Returns float32 stereo audio, shape (2, round(duration_s * sample_rate)), and one
    ``{"t", "type": "speech", "text", "end", "truncated", ...}`` event per dialogue line.
    Collision events (``{"t", "type": "collision", "speed", "screen_x", "material", "size",
    "a", "b"}``) each become an impact sound. Deterministic for (plan, events, duration, rate,
    seed). Raises ``VoiceUnavailableError`` when the plan has dialogue and the voice cannot load.
    """
    if duration_s < 0 or not np.isfinite(duration_s):
        raise ValueError(f"duration_s must be a finite, non-negative number, not {duration_s!r}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, not {sample_rate!r}")
    n = round(duration_s * sample_rate)

    speech, speech_events = _render_speech(plan, n, sample_rate)
    if n == 0:
        return np.zeros((2, 0), dtype=np.float32), speech_events

    ambience = render_ambience(
        plan.setting, plan.time_of_day, n, sample_rate, stream_rng(seed, "ambience")
    )
    music = render_music(plan, n, sample_rate, stream_rng(seed, "music"))
    impacts = render_impacts(plan, events, n, sample_rate, stream_rng(seed, "impacts"))

    if speech_events:
        key = _sidechain(speech, sample_rate)
        music *= 10.0 ** (-MUSIC_DUCK_DB * key / 20.0)
        ambience *= 10.0 ** (-AMBIENCE_DUCK_DB * key / 20.0)

    mix = ambience + music + impacts + speech
    mix = _limit(mix, sample_rate, CEILING)
    fade = min(n // 2, int(EDGE_FADE_S * sample_rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        mix[:, :fade] *= ramp
        mix[:, n - fade :] *= ramp[::-1]
    # The limiter's gain never exceeds what each sample needs; the clip only guards float
    # rounding at the ceiling itself.
    np.clip(mix, -CEILING, CEILING, out=mix)
    return mix.astype(np.float32), speech_events


# Straight and typographic quotes a planner may leave around a quoted line.
_QUOTES = "\"'\u201c\u201d\u2018\u2019"


def _render_speech(plan: ScenePlan, n: int, sample_rate: int):
    out = np.zeros((2, n))
    events: list[dict[str, Any]] = []
    duration_s = n / sample_rate
    for line in sorted(plan.dialogue, key=lambda d: (d.start_s, d.text)):
        text = " ".join(line.text.strip().strip(_QUOTES).split())
        if not text:
            continue
        start_s = max(0.0, float(line.start_s))
        event: dict[str, Any] = {"t": round(start_s, 4), "type": "speech", "text": text}
        if line.speaker:
            event["speaker"] = line.speaker
        start = round(start_s * sample_rate)
        if start >= n:
            # Too late to be heard at all; the event still records that the line was dropped.
            events.append({**event, "end": event["t"], "truncated": True, "spoken_s": 0.0})
            continue
        voice = VOICE.speak(text, sample_rate)
        room = n - start
        truncated = voice.size > room
        if truncated:
            voice = voice[:room].copy()
            fade = min(room, int(0.03 * sample_rate))
            voice[room - fade :] *= np.linspace(1.0, 0.0, fade)
        # Dialogue sits in the centre, as it does in film mixes regardless of who speaks.
        add_at(out, start, np.stack([voice, voice]) * SPEECH_GAIN)
        end_s = (start + voice.size) / sample_rate
        events.append(
            {
                **event,
                "end": round(min(end_s, duration_s), 4),
                "truncated": truncated,
                "spoken_s": round(voice.size / sample_rate, 4),
            }
        )
    return out, events


def _sidechain(speech: np.ndarray, sample_rate: int) -> np.ndarray:
    """Ducking amount 0..1 per sample: fast attack that anticipates speech, held, slow release.

    The speech is known in advance, so the duck starts 60 ms before a word instead of chopping
    its first syllable; it holds through the gaps between words so the music does not pump.
    """
    block = max(1, int(0.01 * sample_rate))
    n = speech.shape[1]
    blocks = -(-n // block)
    mono = np.abs(speech).max(axis=0)
    padded = np.zeros(blocks * block)
    padded[:n] = mono
    active = padded.reshape(blocks, block).max(axis=1) > db(-40.0)
    hold, lookahead = 15, 6  # in 10 ms blocks
    kernel = np.ones(hold + lookahead + 1)
    # Widening by convolution: block i is active if any block in [i - hold, i + lookahead] is.
    widened = np.convolve(active.astype(float), kernel)[lookahead : lookahead + blocks] > 0
    attack, release = 0.5, 0.08  # per-block smoothing toward 1 and back toward 0
    env = np.empty(blocks)
    level = 0.0
    for i, on in enumerate(widened):
        level += (attack if on else release) * ((1.0 if on else 0.0) - level)
        env[i] = level
    centres = (np.arange(blocks) + 0.5) * block
    return np.interp(np.arange(n), centres, env)


def _limit(mix: np.ndarray, sample_rate: int, ceiling: float) -> np.ndarray:
    """Look-ahead peak limiter with a guarantee: no output sample exceeds ``ceiling``.

    Each 2.5 ms block gets the gain its loudest sample needs, lowered further to its
    neighbours' needs so the gain is already down when a peak arrives; recovery is limited to a
    slow release. Interpolating between block gains that are each no larger than the current
    block's need can never exceed that need, so the guarantee holds sample by sample.
    """
    block = max(1, int(0.0025 * sample_rate))
    n = mix.shape[1]
    blocks = -(-n // block)
    peak = np.zeros(blocks * block)
    peak[:n] = np.abs(mix).max(axis=0)
    # A hair under the ceiling, so that rounding in peak * (ceiling / peak) cannot land above it.
    target = ceiling * (1.0 - 1e-9)
    need = np.minimum(1.0, target / np.maximum(peak.reshape(blocks, block).max(axis=1), 1e-12))
    if need.min() >= 1.0:
        return mix
    window = np.minimum(need, np.minimum(np.r_[need[1:], 1.0], np.r_[1.0, need[:-1]]))
    step = block / (0.15 * sample_rate)  # release: full recovery in about 150 ms
    gain = np.empty(blocks)
    level = 1.0
    for i, g in enumerate(window):
        level = min(g, level + step)
        gain[i] = level
    # Anchoring the interpolation at block edges (with the lower of the two neighbours) rather
    # than block centres keeps every sample's gain at or below its own block's.
    edges = np.minimum(np.r_[gain[0], gain], np.r_[gain, gain[-1]])
    per_sample = np.interp(np.arange(n), np.arange(blocks + 1) * block, edges)
    return mix * per_sample
