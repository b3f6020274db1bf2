"""Signal-processing building blocks for the previs soundtrack, in plain numpy.

There is no scipy in the stack, so filtering is done in the frequency domain: noise is drawn
directly as a random spectrum, shaped by a magnitude curve and inverse-transformed. One FFT
per stem keeps a 4 s, 48 kHz stem at a few milliseconds instead of a per-sample Python loop.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np

MagnitudeCurve = Callable[[np.ndarray], np.ndarray]


def stream_rng(seed: int, stream: str) -> np.random.Generator:
    """An independent generator per named stem, so adding an impact never reshuffles the surf."""
    # SeedSequence takes only non-negative integers; fold negatives in without collisions.
    folded = seed * 2 if seed >= 0 else -seed * 2 - 1
    key = [int.from_bytes(stream.encode(), "little") % (2**63)]
    return np.random.default_rng(np.random.SeedSequence([folded, *key]))


def db(value_db: float) -> float:
    return float(10.0 ** (value_db / 20.0))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


# -- magnitude curves (functions of frequency in Hz) ------------------------------------------


def lowpass(cutoff: float, order: int = 2) -> MagnitudeCurve:
    return lambda f: 1.0 / np.sqrt(1.0 + (f / cutoff) ** (2 * order))


def highpass(cutoff: float, order: int = 2) -> MagnitudeCurve:
    def curve(f: np.ndarray) -> np.ndarray:
        ratio = np.divide(cutoff, f, out=np.full_like(f, np.inf), where=f > 0)
        return 1.0 / np.sqrt(1.0 + ratio ** (2 * order))

    return curve


def bandpass(low: float, high: float, order: int = 2) -> MagnitudeCurve:
    lo, hi = highpass(low, order), lowpass(high, order)
    return lambda f: lo(f) * hi(f)


def tilt(exponent: float, floor_hz: float = 20.0) -> MagnitudeCurve:
    """Power-law spectrum: exponent -0.5 is pink noise, -1 is brown."""
    return lambda f: np.maximum(f, floor_hz) ** exponent


def product(*curves: MagnitudeCurve) -> MagnitudeCurve:
    def curve(f: np.ndarray) -> np.ndarray:
        out = np.ones_like(f)
        for c in curves:
            out = out * c(f)
        return out

    return curve


def shaped_noise(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    curve: MagnitudeCurve,
    channels: int = 2,
    correlation: float = 0.0,
) -> np.ndarray:
    """Gaussian noise with spectrum ``curve``, unit RMS per channel, shape (channels, n).

    The spectrum of white Gaussian noise is itself Gaussian and independent per bin, so it is
    drawn directly and only the inverse transform is paid for. ``correlation`` blends a shared
    component into every channel (0 = fully wide stereo, 1 = mono).
    """
    if n == 0:
        return np.zeros((channels, 0), dtype=np.float32)
    bins = n // 2 + 1
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    # Nothing below ~20 Hz: inaudible rumble and DC would only eat the limiter's headroom.
    mag = (curve(freqs) * highpass(25.0, 4)(freqs)).astype(np.float32)
    # float32 halves the cost of the dominant work (drawing and transforming the spectrum) and
    # is still 140 dB below full scale, far below anything audible in the mix.
    rows = channels + 1 if correlation > 0.0 else channels
    spectrum = rng.standard_normal((rows, bins), dtype=np.float32) * mag
    spectrum = spectrum + 1j * rng.standard_normal((rows, bins), dtype=np.float32) * mag
    if correlation > 0.0:
        spectrum = np.sqrt(1.0 - correlation) * spectrum[1:] + np.sqrt(correlation) * spectrum[0]
    out = np.fft.irfft(spectrum.astype(np.complex64), n=n, axis=-1)
    level = np.sqrt(np.mean(np.square(out, dtype=np.float64), axis=-1, keepdims=True))
    return out / np.maximum(level, 1e-12).astype(np.float32)


def filter_fft(x: np.ndarray, sample_rate: int, curve: MagnitudeCurve) -> np.ndarray:
    """Zero-phase filtering of a short signal (last axis) by a magnitude curve."""
    n = x.shape[-1]
    if n == 0:
        return x
    spectrum = np.fft.rfft(x, axis=-1)
    spectrum *= curve(np.fft.rfftfreq(n, 1.0 / sample_rate))
    return np.fft.irfft(spectrum, n=n, axis=-1)


# -- control signals ----------------------------------------------------------------------------


def smooth_random(
    rng: np.random.Generator,
    n: int,
    sample_rate: int,
    rate_hz: float,
    low: float = 0.0,
    high: float = 1.0,
) -> np.ndarray:
    """A slowly wandering control curve: random points ``rate_hz`` apart, cosine-interpolated."""
    if n == 0:
        return np.zeros(0)
    step = max(1, int(sample_rate / rate_hz))
    points = rng.uniform(low, high, n // step + 2)
    pos = np.arange(n) / step
    idx = pos.astype(np.int64)
    frac = pos - idx
    w = 0.5 - 0.5 * np.cos(np.pi * frac)
    return points[idx] * (1.0 - w) + points[idx + 1] * w


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def pan_gains(position: float) -> tuple[float, float]:
    """Equal-power pan law: -1 is hard left, +1 hard right, L² + R² = 1 everywhere."""
    theta = (float(np.clip(position, -1.0, 1.0)) + 1.0) * np.pi / 4.0
    return float(np.cos(theta)), float(np.sin(theta))


def add_at(out: np.ndarray, start: int, signal: np.ndarray) -> None:
    """Mix ``signal`` (channels, m) into ``out`` (channels, n) at ``start``, cropped to fit."""
    n = out.shape[-1]
    m = signal.shape[-1]
    if start >= n or start + m <= 0:
        return
    s0 = max(0, -start)
    s1 = min(m, n - start)
    out[..., start + s0 : start + s1] += signal[..., s0:s1]


# -- oscillators --------------------------------------------------------------------------------

_TABLE_SIZE = 4096


def harmonic_table(weights: list[float] | np.ndarray) -> np.ndarray:
    """One period of sum_k weights[k] * sin(2π(k+1)x), normalised to peak 1, as float32."""
    x = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    table = np.zeros(_TABLE_SIZE)
    for k, w in enumerate(weights):
        if w:
            table += w * np.sin(2.0 * np.pi * (k + 1) * x)
    return (table / max(float(np.max(np.abs(table))), 1e-12)).astype(np.float32)


SINE = harmonic_table([1.0])


def table_index(freq: float, n: int, sample_rate: int, phase: float = 0.0) -> np.ndarray:
    """Table positions of an oscillator at ``freq``; reusable across tables of one note."""
    step = freq / sample_rate * _TABLE_SIZE
    # The table size is a power of two, so wrapping is a bit mask instead of a float modulo.
    return (np.arange(n) * step + phase * _TABLE_SIZE).astype(np.int64) & (_TABLE_SIZE - 1)


def table_osc(table: np.ndarray, freq: float, n: int, sample_rate: int, phase: float = 0.0):
    """A wavetable oscillator; a table lookup costs far less than one sin() per harmonic."""
    return table[table_index(freq, n, sample_rate, phase)]


def band_limited_weights(weights: list[float], freq: float, sample_rate: int) -> list[float]:
    """Drop harmonics that would alias above 45% of the sample rate."""
    limit = 0.45 * sample_rate
    return [w if freq * (k + 1) < limit else 0.0 for k, w in enumerate(weights)]


def damped_modes(
    freqs: np.ndarray,
    decays: np.ndarray,
    amps: np.ndarray,
    n: int,
    sample_rate: int,
) -> np.ndarray:
    """Sum of exponentially damped sinusoids (modal synthesis), each cut when it is inaudible.

    ``decays`` are amplitude decay rates in 1/s. Modes above 45% of the sample rate are dropped.
    """
    out = np.zeros(n)
    for f, d, a in zip(freqs, decays, amps, strict=True):
        if f >= 0.45 * sample_rate or a <= 0.0:
            continue
        # -80 dB below its own start is below anything the limiter will let through.
        length = min(n, int(9.2 / max(d, 1e-3) * sample_rate) + 1)
        t = np.arange(length) / sample_rate
        out[:length] += a * np.exp(-d * t) * np.sin(2.0 * np.pi * f * t)
    return out


# -- resampling ---------------------------------------------------------------------------------


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling of a mono signal by FFT zero-padding/truncation.

    The input is zero-padded to a multiple of the reduced rate ratio so the output length is an
    exact integer and the time scale is exact; the padding also keeps the FFT's circular wrap from
    folding the end of a line onto its start.
    """
    if src_rate == dst_rate or x.size == 0:
        return x.astype(np.float64)
    ratio = Fraction(dst_rate, src_rate)
    pad = 256
    n = x.size + 2 * pad
    n += (-n) % ratio.denominator
    padded = np.zeros(n)
    padded[pad : pad + x.size] = x
    m = n * ratio.numerator // ratio.denominator
    spectrum = np.fft.rfft(padded)
    bins = m // 2 + 1
    if bins <= spectrum.size:
        spectrum = spectrum[:bins]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(bins - spectrum.size, complex)])
    out = np.fft.irfft(spectrum, n=m) * (m / n)
    start = pad * ratio.numerator // ratio.denominator
    return out[start : start + round(x.size * ratio)]
