"""A procedural music bed: chords in a key and tempo chosen by mood, following the shots' arc.

The score is fitted to the picture the way a film cue is: the tempo is nudged (by at most a few
per cent) so the clip holds a whole number of chords and the last one, always the tonic, ends
exactly on the final frame. Intensity rises shot by shot and swells toward the end; it drives the
level, the pad's brightness and how many arpeggio notes are played.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generation.engines.base import ScenePlan

from .audio_dsp import (
    band_limited_weights,
    db,
    harmonic_table,
    pan_gains,
    rms,
    smoothstep,
    table_index,
    table_osc,
)

MAJOR = (0, 2, 4, 5, 7, 9, 11)
NATURAL_MINOR = (0, 2, 3, 5, 7, 8, 10)
# The raised seventh gives minor keys a dominant V chord, and with it a pull back to the tonic.
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)


@dataclass(frozen=True)
class Score:
    scale: tuple[int, ...]
    bpm: float
    keys: tuple[int, ...]  # tonic pitch classes, C = 0
    progression: tuple[int, ...]  # scale degrees, 0 = tonic
    sevenths: bool
    notes_per_beat: int  # arpeggio subdivision
    density: float  # chance an arpeggio step sounds at full intensity
    brightness: float  # pad timbre 0 (soft sine-like) .. 1 (buzzy)
    level_db: float  # RMS of the finished bed before ducking
    pulse: bool = False  # an eighth-note ostinato on the root
    boom: bool = False  # a low drum on each chord change


SCORES: dict[str, Score] = {
    "joyful": Score(MAJOR, 116.0, (0, 2, 7, 9), (0, 4, 5, 3), False, 2, 0.85, 0.7, -27.0),
    "calm": Score(MAJOR, 72.0, (5, 0, 7, 2), (0, 5, 3, 4), True, 1, 0.7, 0.25, -30.0),
    "melancholy": Score(NATURAL_MINOR, 66.0, (9, 2, 4), (0, 5, 2, 6), False, 1, 0.6, 0.3, -29.0),
    "tense": Score(
        HARMONIC_MINOR, 100.0, (4, 6, 0), (0, 0, 5, 4), False, 2, 0.45, 0.45, -28.0, pulse=True
    ),
    "epic": Score(
        NATURAL_MINOR, 84.0, (2, 0), (0, 5, 2, 6), False, 2, 0.7, 0.6, -26.0, pulse=True, boom=True
    ),
}
MOOD_ALIASES = {
    "happy": "joyful",
    "cheerful": "joyful",
    "playful": "joyful",
    "upbeat": "joyful",
    "fun": "joyful",
    "triumphant": "joyful",
    "peaceful": "calm",
    "serene": "calm",
    "relaxed": "calm",
    "dreamy": "calm",
    "romantic": "calm",
    "neutral": "calm",
    "sad": "melancholy",
    "somber": "melancholy",
    "nostalgic": "melancholy",
    "lonely": "melancholy",
    "suspenseful": "tense",
    "scary": "tense",
    "dark": "tense",
    "ominous": "tense",
    "mysterious": "tense",
    "dramatic": "epic",
    "heroic": "epic",
    "intense": "epic",
}
# How much each camera move lifts a shot's intensity: moving in reads as rising stakes.
CAMERA_LIFT = {
    "static": 0.0,
    "pan": 0.05,
    "orbit": 0.1,
    "dolly": 0.1,
    "push_in": 0.15,
    "crane": 0.2,
}
CONTROL_RATE = 200  # Hz, for the intensity curve

_PAD_DARK = harmonic_table([1.0, 0.3, 0.12, 0.05])
_PAD_BRIGHT = harmonic_table([1.0, 0.5, 0.33, 0.25, 0.2, 0.16, 0.14, 0.12])
_BASS = harmonic_table([1.0, 0.35, 0.1])
_PULSE = harmonic_table([1.0, 0.5, 0.33, 0.25, 0.2])


def score_for(mood: str) -> Score:
    mood = (mood or "").strip().lower()
    return SCORES.get(MOOD_ALIASES.get(mood, mood), SCORES["calm"])


def midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def intensity_curve(plan: ScenePlan, duration_s: float) -> np.ndarray:
    """Intensity 0..1 at CONTROL_RATE: a step per shot, smoothed, plus a swell to the end."""
    m = max(1, int(np.ceil(duration_s * CONTROL_RATE)))
    t = np.arange(m) / CONTROL_RATE
    shots = [s for s in plan.shots if s.duration_s > 0] or []
    total = sum(s.duration_s for s in shots)
    level = np.full(m, 0.5)
    if shots:
        # Shot lengths are scaled to the audio's duration in case they disagree by rounding.
        edges = np.cumsum([0.0] + [s.duration_s for s in shots]) * (duration_s / total)
        count = len(shots)
        for i, shot in enumerate(shots):
            step = 0.35 + 0.35 * (i / (count - 1) if count > 1 else 0.0)
            step += CAMERA_LIFT.get(shot.camera, 0.05)
            level[(t >= edges[i]) & (t < edges[i + 1] + 1e-9)] = step
        width = max(1, int(0.4 * CONTROL_RATE))
        kernel = np.hanning(width + 2)[1:-1]
        padded = np.pad(level, width, mode="edge")
        level = np.convolve(padded, kernel / kernel.sum(), mode="same")[width:-width]
    swell = 0.3 * smoothstep((t - 0.5 * duration_s) / (0.45 * duration_s))
    tail = 1.0 - 0.35 * smoothstep((t - (duration_s - 0.3)) / 0.3)
    return np.clip((level + swell) * tail, 0.1, 1.0)


def render_music(plan: ScenePlan, n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros((2, n))
    if n == 0:
        return out
    sr = sample_rate
    duration_s = n / sr
    score = score_for(plan.mood)
    tonic = int(rng.choice(score.keys))

    beat = 60.0 / score.bpm
    beats_per_chord = 4 if 4 * beat <= 2.2 else 2
    chords = max(1, round(duration_s / (beat * beats_per_chord)))
    chord_s = duration_s / chords
    beat = chord_s / beats_per_chord

    control = intensity_curve(plan, duration_s)
    intensity = np.interp(np.arange(n) / sr, np.arange(control.size) / CONTROL_RATE, control)

    def at(time_s: float) -> float:
        return float(control[min(control.size - 1, int(time_s * CONTROL_RATE))])

    degrees = [score.progression[i % len(score.progression)] for i in range(chords)]
    degrees[-1] = 0  # end on the tonic, a cadence the ear accepts as an ending
    pattern = [(0, 1, 2, 3), (0, 1, 2, 3, 2, 1), (0, 2, 1, 3)][int(rng.integers(0, 3))]
    release = min(0.6, chord_s * 0.5)
    pads = np.zeros((2, n))
    for c, degree in enumerate(degrees):
        start = int(c * chord_s * sr)
        end = min(n, int((c + 1) * chord_s * sr))
        pcs = _chord(score, tonic, degree)
        _pad(pads, pcs, start, end, release, score.brightness, intensity, sr, rng)
        _bass(out, pcs[0], start, end, beats_per_chord, beat, at, sr)
        _arpeggio(out, pcs, start, beat, beats_per_chord, score, pattern, at, sr, rng)
        if score.pulse:
            _pulse(out, pcs[0], start, end, beat, at, sr)
        if score.boom:
            _boom(out, start, at(c * chord_s), sr)
    out += pads * (0.55 + 0.45 * intensity)
    out = _reverb(out, sr, rng, seconds=1.6 if score.bpm < 90 else 1.1, wet=0.3)
    level = rms(out)
    if level > 0:
        out *= db(score.level_db) / level
    return out


def _chord(score: Score, tonic: int, degree: int) -> list[int]:
    """Pitch classes of the chord on ``degree``: root first, stacked in thirds within the key."""
    size = 4 if score.sevenths else 3
    return [(tonic + score.scale[(degree + 2 * k) % 7]) % 12 for k in range(size)]


def _place(pc: int, low: int) -> int:
    """The MIDI note of pitch class ``pc`` in the octave starting at ``low``."""
    return low + (pc - low) % 12


def _pad(out, pcs, start, end, release, brightness, intensity, sr, rng) -> None:
    length = min(out.shape[1], end + int(release * sr)) - start
    if length <= 0:
        return
    t = np.arange(length) / sr
    attack = min(0.35, 0.4 * (end - start) / sr)
    env = smoothstep(t / attack) * np.where(
        t < (end - start) / sr, 1.0, np.exp(-(t - (end - start) / sr) / (release / 4.0))
    )
    # Brighter with intensity: the swell is heard in timbre as well as level.
    mix = np.clip(brightness * 0.5 + 0.6 * intensity[start : start + length] - 0.2, 0.0, 1.0)
    mix = mix.astype(np.float32)
    env = (env * (0.5 / len(pcs))).astype(np.float32)
    for pc in pcs:
        f = midi_hz(_place(pc, 55))
        dark = band_limited_weights([1.0, 0.3, 0.12, 0.05], f, sr)
        bright = band_limited_weights([1.0, 0.5, 0.33, 0.25, 0.2, 0.16, 0.14, 0.12], f, sr)
        tables = (
            harmonic_table(dark) if 0.0 in dark else _PAD_DARK,
            harmonic_table(bright) if 0.0 in bright else _PAD_BRIGHT,
        )
        dark_table, lift = tables[0], tables[1] - tables[0]
        for ch, cents in enumerate((-6.0, 6.0)):
            idx = table_index(f * 2.0 ** (cents / 1200.0), length, sr, rng.uniform())
            out[ch, start : start + length] += (dark_table[idx] + lift[idx] * mix) * env


def _bass(out, root_pc, start, end, beats_per_chord, beat, at, sr) -> None:
    f = midi_hz(_place(root_pc, 36))
    hits = range(0, beats_per_chord, 2)
    for b in hits:
        s = start + int(b * beat * sr)
        stop = min(out.shape[1], start + int(min(b + 2, beats_per_chord) * beat * sr), end)
        length = stop - s
        if length <= 0:
            continue
        t = np.arange(length) / sr
        fade = np.minimum(1.0, (length - np.arange(length)) / (0.02 * sr))
        env = smoothstep(t / 0.01) * np.exp(-t / 0.9) * fade
        velocity = 0.35 + 0.4 * at(s / sr)
        tone = table_osc(_BASS, f, length, sr) * env * 0.3 * velocity
        out[:, s:stop] += tone


def _arpeggio(out, pcs, start, beat, beats_per_chord, score, pattern, at, sr, rng) -> None:
    tones = sorted(_place(pc, 67) for pc in pcs[:3])
    tones.append(tones[0] + 12)
    steps = beats_per_chord * score.notes_per_beat
    step_s = beat / score.notes_per_beat
    length = int(min(0.9, 4 * step_s + 0.3) * sr)
    t = np.arange(length) / sr
    # Two exponentials: the bright attack fades fast, the near-sine body lingers, as in a plucked
    # string whose upper partials lose energy first.
    bright_env = np.exp(-t / 0.09) * smoothstep(t / 0.003)
    body_env = np.exp(-t / 0.35) * smoothstep(t / 0.003)
    for i in range(steps):
        s = start + int(i * step_s * sr)
        level = at(s / sr)
        if rng.uniform() > score.density * (0.45 + 0.55 * level):
            continue
        note = tones[pattern[i % len(pattern)] % len(tones)]
        f = midi_hz(note)
        velocity = (0.25 + 0.35 * level) * rng.uniform(0.8, 1.0)
        m = min(length, out.shape[1] - s)
        if m <= 0:
            continue
        idx = table_index(f, m, sr)
        sound = (_PULSE[idx] * bright_env[:m] + _BASS[idx] * body_env[:m]) * velocity
        left, right = pan_gains(rng.uniform(-0.5, 0.5))
        out[0, s : s + m] += sound * left
        out[1, s : s + m] += sound * right


def _pulse(out, root_pc, start, end, beat, at, sr) -> None:
    f = midi_hz(_place(root_pc, 45))
    step = beat / 2.0
    length = int(min(step, 0.2) * sr)
    t = np.arange(length) / sr
    env = smoothstep(t / 0.004) * np.exp(-t / 0.07)
    s = start
    k = 0
    while s < end:
        m = min(length, out.shape[1] - s)
        velocity = 0.12 + 0.25 * at(s / sr)
        out[:, s : s + m] += table_osc(_PULSE, f, m, sr) * env[:m] * velocity
        k += 1
        s = start + int(k * step * sr)


def _boom(out, start, level, sr) -> None:
    length = min(out.shape[1] - start, int(0.8 * sr))
    if length <= 0:
        return
    t = np.arange(length) / sr
    freq = 48.0 + 40.0 * np.exp(-t / 0.05)  # a struck drum head drops in pitch as it relaxes
    phase = np.cumsum(freq) / sr
    sound = np.sin(2 * np.pi * phase) * np.exp(-t / 0.25) * smoothstep(t / 0.002)
    out[:, start : start + length] += sound * (0.3 + 0.5 * level)


def _reverb(x: np.ndarray, sr: int, rng: np.random.Generator, seconds: float, wet: float):
    """A hall: convolution with decaying, decorrelated noise, lowpassed as real rooms are."""
    n = x.shape[1]
    m = int(seconds * sr)
    t = np.arange(m) / sr
    ir = rng.standard_normal((2, m)) * np.exp(-6.9 * t / seconds)
    ir[:, : int(0.012 * sr)] = 0.0  # pre-delay keeps the attacks clear of their own tail
    size = _fast_length(n + m)
    freqs = np.fft.rfftfreq(size, 1.0 / sr)
    damp = 1.0 / np.sqrt(1.0 + (freqs / 5000.0) ** 2)
    # Single precision: a reverb tail has no use for 300 dB of dynamic range, and it halves
    # the cost of the largest transforms in the render.
    dry = np.fft.rfft(x.astype(np.float32), n=size)
    spectrum = dry * np.fft.rfft(ir.astype(np.float32), n=size)
    tail = np.fft.irfft(spectrum * damp.astype(np.float32), n=size)[:, :n]
    tail *= rms(x) / max(rms(tail), 1e-12)
    return x * (1.0 - wet) + tail * wet


def _fast_length(n: int) -> int:
    """The smallest 2^a·3^b·5^c ≥ n: FFTs of such lengths are fast, of large primes slow."""
    best = 1 << int(np.ceil(np.log2(max(n, 1))))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best
