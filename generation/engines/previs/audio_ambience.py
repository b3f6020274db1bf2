"""Ambience beds by setting and time of day: surf, wind, birds, crickets, traffic, drones."""

from __future__ import annotations

import numpy as np

from .audio_dsp import (
    SINE,
    add_at,
    band_limited_weights,
    bandpass,
    db,
    harmonic_table,
    highpass,
    lowpass,
    pan_gains,
    product,
    shaped_noise,
    smooth_random,
    smoothstep,
    table_osc,
    tilt,
)

# Settings the planner may name by another word.
ALIASES = {
    "ocean": "beach",
    "sea": "beach",
    "coast": "beach",
    "lake": "beach",
    "woods": "forest",
    "jungle": "forest",
    "park": "forest",
    "field": "forest",
    "city": "street",
    "town": "street",
    "road": "street",
    "room": "studio",
    "indoor": "studio",
    "indoors": "studio",
    "office": "studio",
    "home": "studio",
    "orbit": "space",
    "mountain": "snow",
}
# Outdoor settings where crickets are plausible at night.
CRICKET_SETTINGS = {"forest", "desert", "street", "outdoor"}
NIGHT_GAIN = db(-6.0)


def canonical_setting(setting: str) -> str:
    setting = (setting or "").strip().lower()
    setting = ALIASES.get(setting, setting)
    return setting if setting in _BEDS else "outdoor"


def render_ambience(
    setting: str, time_of_day: str, n: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    setting = canonical_setting(setting)
    time_of_day = (time_of_day or "day").strip().lower()
    out = _BEDS[setting](n, sample_rate, rng, time_of_day)
    if time_of_day == "night":
        out *= NIGHT_GAIN
        if setting in CRICKET_SETTINGS:
            out += _crickets(n, sample_rate, rng, db(-36.0))
    elif time_of_day == "sunset" and setting in CRICKET_SETTINGS:
        out += _crickets(n, sample_rate, rng, db(-46.0))
    return out


# -- beds ---------------------------------------------------------------------------------------


def _beach(n: int, sr: int, rng: np.random.Generator, time_of_day: str) -> np.ndarray:
    t = np.arange(n) / sr
    # Waves arrive every 6-9 s; each swells slowly, breaks, and washes up the sand.
    period = rng.uniform(6.0, 9.0)
    offset = rng.uniform(0.0, period)
    swell = np.zeros(n)
    wash = np.zeros(n)
    k0 = int(np.floor((-offset - period) / period))
    k1 = int(np.ceil((t[-1] if n else 0.0) / period)) + 1
    for k in range(k0, k1 + 1):
        crest = offset + k * period + rng.uniform(-0.8, 0.8)
        rise = smoothstep((t - (crest - 2.5)) / 2.5)
        fall = np.exp(-np.maximum(t - crest, 0.0) / 1.8)
        swell = np.maximum(swell, rise * fall)
        after = np.maximum(t - crest - 0.3, 0.0)
        wash = np.maximum(wash, (1.0 - np.exp(-after / 0.15)) * np.exp(-after / 2.5))
    roar = shaped_noise(rng, n, sr, product(tilt(-0.5), bandpass(60.0, 700.0, 2)), correlation=0.4)
    foam = shaped_noise(rng, n, sr, product(bandpass(900.0, 9000.0, 1), tilt(-0.3)))
    bed = roar * (0.35 + 0.65 * swell) * db(-28.0) + foam * (0.25 + 0.75 * wash) * db(-31.0)
    if time_of_day in {"day", "sunrise"}:
        bed += _birds(n, sr, rng, rate=0.25, level=db(-40.0), low=2200.0, high=3800.0)
    return bed


def _forest(n: int, sr: int, rng: np.random.Generator, time_of_day: str) -> np.ndarray:
    gust = smooth_random(rng, n, sr, 0.7, 0.25, 1.0)
    wind = shaped_noise(rng, n, sr, product(bandpass(150.0, 900.0, 1), tilt(-0.5)), correlation=0.3)
    leaves = shaped_noise(rng, n, sr, highpass(2500.0, 2))
    bed = wind * gust * db(-33.0) + leaves * gust**2 * db(-42.0)
    rate = {"sunrise": 3.0, "day": 1.6, "sunset": 0.6}.get(time_of_day, 0.0)
    if rate:
        bed += _birds(n, sr, rng, rate=rate, level=db(-30.0), low=2500.0, high=6500.0)
    return bed


def _street(n: int, sr: int, rng: np.random.Generator, time_of_day: str) -> np.ndarray:
    t = np.arange(n) / sr
    rumble = shaped_noise(rng, n, sr, product(tilt(-1.0), lowpass(160.0, 2)), correlation=0.6)
    hum = shaped_noise(rng, n, sr, bandpass(200.0, 1200.0, 1), correlation=0.5)
    bed = rumble * db(-27.0) + hum * db(-40.0)
    # Cars passing: tyre roar and engine tone that swell, sweep across the stereo field and
    # drop in pitch as they pass (Doppler shift at ~14 m/s).
    passes = rng.poisson(max(n / sr, 0.1) * (0.15 if time_of_day == "night" else 0.4)) + 1
    tyre_all = shaped_noise(rng, n, sr, bandpass(300.0, 2500.0, 1), channels=1)[0]
    for _ in range(passes):
        centre = rng.uniform(-1.0, n / sr + 1.0)
        width = rng.uniform(0.8, 1.6)
        direction = rng.choice([-1.0, 1.0])
        x = (t - centre) / width
        env = np.exp(-0.5 * (x * 2.2) ** 2)
        if env.max() < 1e-3:
            continue
        pan = direction * np.tanh(1.5 * x)
        theta = (pan + 1.0) * np.pi / 4.0
        doppler = 1.0 - 0.04 * np.tanh(2.0 * x)
        f0 = rng.uniform(70.0, 120.0)
        phase = np.cumsum(f0 * doppler) / sr
        engine = (
            np.sin(2 * np.pi * phase)
            + 0.5 * np.sin(4 * np.pi * phase)
            + 0.25 * np.sin(6 * np.pi * phase)
        )
        car = (tyre_all * 0.8 + engine * 0.3) * env * db(-28.0)
        bed[0] += car * np.cos(theta)
        bed[1] += car * np.sin(theta)
    return bed


def _space(n: int, sr: int, rng: np.random.Generator, time_of_day: str) -> np.ndarray:
    t = np.arange(n) / sr
    base = rng.uniform(38.0, 48.0)
    drone = np.zeros((2, n), dtype=np.float32)
    for ratio, level in ((1.0, 1.0), (1.5, 0.5), (2.0, 0.35), (3.0, 0.15)):
        # Each partial swells at its own slow rate, so the drone breathes instead of droning on.
        lfo = 0.75 + 0.25 * np.sin(2 * np.pi * rng.uniform(0.05, 0.12) * t + rng.uniform(0, 6.3))
        lfo = (lfo * (level / 2.0)).astype(np.float32)
        for ch, detune in enumerate((-0.15, 0.15)):
            drone[ch] += lfo * table_osc(SINE, base * ratio + detune, n, sr, rng.uniform())
    air = shaped_noise(rng, n, sr, product(tilt(-1.0), lowpass(220.0, 2)), correlation=0.5)
    return drone * db(-30.0) + air * db(-44.0)


def _studio(n: int, sr: int, rng: np.random.Generator, time_of_day: str) -> np.ndarray:
    # Room tone: air handling and the room's own low resonances, just above silence.
    tone = shaped_noise(rng, n, sr, product(tilt(-0.5), lowpass(3500.0, 1)), correlation=0.5)
    hvac = shaped_noise(rng, n, sr, bandpass(80.0, 300.0, 2), correlation=0.8)
    return tone * db(-52.0) + hvac * db(-50.0)


def _desert(n: int, sr: int, rng: np.random.Generator, time_of_day: str) -> np.ndarray:
    gust = smooth_random(rng, n, sr, 0.5, 0.15, 1.0)
    hiss = shaped_noise(rng, n, sr, bandpass(500.0, 3000.0, 1))
    low = shaped_noise(rng, n, sr, product(tilt(-1.0), lowpass(250.0, 2)), correlation=0.5)
    return hiss * gust * db(-36.0) + low * gust * db(-34.0)


def _snow(n: int, sr: int, rng: np.random.Generator, time_of_day: str) -> np.ndarray:
    # Snow absorbs high frequencies: a muffled, quiet wind.
    gust = smooth_random(rng, n, sr, 0.4, 0.2, 1.0)
    wind = shaped_noise(rng, n, sr, product(bandpass(100.0, 500.0, 2), tilt(-0.5)), correlation=0.3)
    return wind * gust * db(-37.0)


def _outdoor(n: int, sr: int, rng: np.random.Generator, time_of_day: str) -> np.ndarray:
    gust = smooth_random(rng, n, sr, 0.5, 0.3, 1.0)
    air = shaped_noise(rng, n, sr, product(bandpass(120.0, 1500.0, 1), tilt(-0.5)), correlation=0.3)
    bed = air * gust * db(-38.0)
    if time_of_day in {"day", "sunrise"}:
        bed += _birds(n, sr, rng, rate=0.8, level=db(-36.0), low=2500.0, high=6000.0)
    return bed


_BEDS = {
    "beach": _beach,
    "forest": _forest,
    "street": _street,
    "space": _space,
    "studio": _studio,
    "desert": _desert,
    "snow": _snow,
    "outdoor": _outdoor,
}


# -- creatures ----------------------------------------------------------------------------------


def _birds(
    n: int, sr: int, rng: np.random.Generator, rate: float, level: float, low: float, high: float
) -> np.ndarray:
    """Phrases of frequency-swept chirps at random times and places in the stereo field."""
    out = np.zeros((2, n))
    phrases = rng.poisson(rate * n / sr)
    table = harmonic_table(band_limited_weights([1.0, 0.12, 0.05], high * 1.6, sr))
    for _ in range(phrases):
        start_s = rng.uniform(0.0, n / sr)
        f_base = rng.uniform(low, high)
        sweep = rng.uniform(-0.4, 0.5) * f_base
        chirps = int(rng.integers(2, 7))
        dur = rng.uniform(0.04, 0.12)
        gap = rng.uniform(0.03, 0.1)
        left, right = pan_gains(rng.uniform(-0.9, 0.9))
        gain = level * rng.uniform(0.4, 1.0)
        m = int(dur * sr)
        if m < 8:
            continue
        u = np.linspace(0.0, 1.0, m)
        freq = np.clip(f_base + sweep * np.sin(np.pi * u) * (2 * u - 0.5), 400.0, 0.42 * sr)
        phase = np.cumsum(freq) / sr
        chirp = table[((phase % 1.0) * table.size).astype(np.int64)] * np.sin(np.pi * u) ** 2
        for c in range(chirps):
            at = int((start_s + c * (dur + gap)) * sr)
            g = gain * (1.0 - 0.08 * c)
            add_at(out, at, np.stack([chirp * g * left, chirp * g * right]))
    return out


def _crickets(n: int, sr: int, rng: np.random.Generator, level: float) -> np.ndarray:
    """Field crickets: a ~4-5 kHz carrier, pulsed in short trills, several insects apart."""
    out = np.zeros((2, n))
    t = np.arange(n) / sr
    for _ in range(int(rng.integers(3, 6))):
        carrier_hz = min(rng.uniform(3800.0, 5200.0), 0.42 * sr)
        pulse_hz = rng.uniform(25.0, 40.0)
        chirp_hz = rng.uniform(1.5, 3.0)
        pulses = np.maximum(np.sin(2 * np.pi * pulse_hz * t + rng.uniform(0, 6.3)), 0.0) ** 2
        # Each chirp is a burst of 3-5 pulses, then silence until the next chirp.
        duty = rng.uniform(0.25, 0.45)
        cycle = (t * chirp_hz + rng.uniform(0, 1)) % 1.0
        gate = np.where(cycle < duty, np.sin(np.pi * np.minimum(cycle / duty, 1.0)), 0.0)
        song = np.sin(2 * np.pi * carrier_hz * t) * pulses * gate
        left, right = pan_gains(rng.uniform(-0.9, 0.9))
        g = level * rng.uniform(0.3, 1.0)
        out[0] += song * g * left
        out[1] += song * g * right
    return out
