"""Impact sounds for physics collisions, by modal synthesis.

A struck body rings at its vibration modes: damped sinusoids whose frequencies scale inversely
with size and whose damping comes from the material's internal loss (a mode at f decays at
π·f·η per second, so high partials die first and metal rings while wood knocks). How strongly each
mode is excited depends on how long the two bodies stay in contact: a short, hard contact is a
broadband click that excites every mode; a long, soft one (rubber on sand) only the low ones.
Contact time follows Hertz's law (τ ∝ v^-1/5) so faster hits are also brighter, not just louder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from generation.engines.base import ScenePlan

from .audio_dsp import add_at, bandpass, damped_modes, filter_fft, lowpass, pan_gains


@dataclass(frozen=True)
class Material:
    pitch: float  # fundamental times size (Hz·m): a body twice as large rings an octave lower
    ratios: tuple[float, ...]  # mode frequencies relative to the fundamental
    loss: float  # internal loss factor η
    contact_ms: float  # contact duration against a rigid surface at 2 m/s
    loudness: float  # radiated level relative to other materials


MATERIALS: dict[str, Material] = {
    # Free-bar ratios: a metal or glass object rings inharmonically, like a bell.
    "metal": Material(180.0, (1.0, 2.76, 5.40, 8.93, 13.34), 0.0015, 0.3, 1.0),
    "glass": Material(330.0, (1.0, 2.32, 4.25, 6.63, 9.38), 0.002, 0.25, 0.8),
    "stone": Material(240.0, (1.0, 2.21, 3.93, 6.10), 0.02, 0.4, 0.9),
    "wood": Material(110.0, (1.0, 2.57, 4.90, 7.70), 0.03, 0.8, 0.85),
    "plastic": Material(120.0, (1.0, 1.93, 3.31, 5.10), 0.05, 1.0, 0.75),
    # A rubber ball is a pressurised shell: a low, fairly clean "boing" that dies quickly.
    "rubber": Material(70.0, (1.0, 1.59, 2.31, 3.02), 0.06, 3.0, 0.8),
    "matte": Material(100.0, (1.0, 2.03, 3.22), 0.08, 2.0, 0.7),
}
DEFAULT_MATERIAL = "matte"


@dataclass(frozen=True)
class Surface:
    contact_ms: float  # compliance of the ground: sand yields, asphalt does not
    damping: float  # extra decay (1/s) the ground adds to the body's modes while touching it
    grain: float  # level of granular crunch (sand, snow, gravel, leaves)
    grain_band: tuple[float, float]
    modes: tuple[tuple[float, float], ...] = ()  # the ground's own resonances (Hz, decay 1/s)


SURFACES: dict[str, Surface] = {
    # Soft ground has no ring of its own, but the displaced mass of sand or earth gives a short,
    # low thud under the body's own modes.
    "sand": Surface(7.0, 12.0, 0.35, (1500.0, 7000.0), ((120.0, 45.0), (210.0, 70.0))),
    "snow": Surface(10.0, 25.0, 0.3, (800.0, 5000.0), ((100.0, 55.0),)),
    "soil": Surface(5.0, 12.0, 0.25, (900.0, 5000.0), ((90.0, 35.0), (160.0, 50.0))),
    "asphalt": Surface(0.3, 4.0, 0.06, (2500.0, 9000.0)),
    "floor": Surface(0.6, 6.0, 0.0, (2000.0, 8000.0), ((95.0, 28.0), (180.0, 40.0), (340.0, 60.0))),
    # No air in space: the thud is what a body-mounted microphone would pick up, dull and low.
    "regolith": Surface(6.0, 30.0, 0.1, (400.0, 2500.0), ((70.0, 40.0),)),
}
SURFACE_BY_SETTING = {
    "beach": "sand",
    "desert": "sand",
    "snow": "snow",
    "forest": "soil",
    "park": "soil",
    "field": "soil",
    "street": "asphalt",
    "city": "asphalt",
    "studio": "floor",
    "room": "floor",
    "space": "regolith",
}
# Below this speed the physics is resting contact, not an audible hit.
MIN_SPEED = 0.15
# Repeated contacts of the same pair closer than this are one hit spread over several steps.
MERGE_S = 0.04
MAX_IMPACTS = 64
MAX_RING_S = 2.0


def collisions(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The audible collisions: sorted, resting contacts dropped, per-step duplicates merged."""
    hits = sorted(
        (
            e
            for e in events
            if e.get("type") == "collision" and float(e.get("speed") or 0.0) >= MIN_SPEED
        ),
        key=lambda e: (float(e["t"]), str(e.get("a")), str(e.get("b"))),
    )
    merged: list[dict[str, Any]] = []
    last_by_pair: dict[tuple[str, str], int] = {}
    for e in hits:
        pair = tuple(sorted((str(e.get("a")), str(e.get("b")))))
        i = last_by_pair.get(pair)
        if i is not None and float(e["t"]) - float(merged[i]["t"]) < MERGE_S:
            if float(e["speed"]) > float(merged[i]["speed"]):
                merged[i] = {**e, "t": merged[i]["t"]}
            continue
        last_by_pair[pair] = len(merged)
        merged.append(e)
    if len(merged) > MAX_IMPACTS:
        # A pile-up of hundreds of contacts is masked by its loudest members anyway.
        loudest = sorted(range(len(merged)), key=lambda i: -float(merged[i]["speed"]))
        keep = sorted(loudest[:MAX_IMPACTS])
        merged = [merged[i] for i in keep]
    return merged


def _body_modes(
    material: Material, size: float, contact_s: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f0 = float(np.clip(material.pitch / max(size, 0.01), 40.0, 8000.0))
    ratios = np.asarray(material.ratios)
    # Where the body is struck changes which modes sound; a little jitter keeps repeated hits
    # from sounding like one sample played back.
    freqs = f0 * ratios * (1.0 + rng.uniform(-0.015, 0.015, ratios.size))
    decays = np.pi * freqs * material.loss + 3.0
    amps = (1.0 / ratios) * rng.uniform(0.75, 1.0, ratios.size) * _excitation(freqs, contact_s)
    return freqs, decays, amps


def _excitation(freqs: np.ndarray, contact_s: float) -> np.ndarray:
    """Spectrum of a half-sine contact force of duration τ: flat, then falling past ~1/τ."""
    x = freqs * contact_s
    return 1.0 / (1.0 + (1.5 * x) ** 4) ** 0.5


def _impact_sound(
    event: dict[str, Any],
    bodies: dict[str, tuple[str, float]],
    surface: Surface,
    sample_rate: int,
    rng: np.random.Generator,
) -> np.ndarray:
    speed = float(event["speed"])
    mat_a = MATERIALS.get(str(event.get("material") or ""), MATERIALS[DEFAULT_MATERIAL])
    size_a = float(event.get("size") or 0.25)
    hertz = (max(speed, 0.2) / 2.0) ** -0.2

    other = event.get("b")
    on_ground = other == "ground" or other not in bodies
    freqs, decays, amps = np.zeros(0), np.zeros(0), np.zeros(0)
    if on_ground:
        contact_s = np.hypot(mat_a.contact_ms, surface.contact_ms) * 1e-3 * hertz
        extra_damping = surface.damping
        if surface.modes:
            freqs = np.array([m[0] for m in surface.modes])
            decays = np.array([m[1] for m in surface.modes])
            amps = 0.6 * _excitation(freqs, contact_s)
    else:
        mat_b = MATERIALS.get(bodies[other][0], MATERIALS[DEFAULT_MATERIAL])
        # Two springs in series: the softer body dominates the contact time.
        contact_s = np.hypot(mat_a.contact_ms, mat_b.contact_ms) * 1e-3 * hertz
        extra_damping = 0.0
        freqs, decays, amps = _body_modes(mat_b, bodies[other][1], contact_s, rng)

    fa, da, aa = _body_modes(mat_a, size_a, contact_s, rng)
    freqs = np.concatenate([fa, freqs])
    amps = np.concatenate([aa, amps])
    decays = np.concatenate([da, decays]) + extra_damping

    ring_s = min(MAX_RING_S, 9.2 / float(np.min(decays)))
    n = int(ring_s * sample_rate) + 1
    body = damped_modes(freqs, decays, amps, n, sample_rate)
    body /= max(float(np.max(np.abs(body))), 1e-9)

    # The click of contact itself: broadband noise as long as the contact, band-limited by it.
    click_n = min(n, int((3.0 * contact_s + 0.004) * sample_rate) + 1)
    t = np.arange(click_n) / sample_rate
    click = rng.standard_normal(click_n) * np.exp(-t / (contact_s + 0.0015))
    click = filter_fft(click, sample_rate, lowpass(min(0.6 / contact_s, 0.4 * sample_rate), 2))
    click /= max(float(np.max(np.abs(click))), 1e-9)
    sound = body
    sound[:click_n] += 0.45 * click

    if on_ground and surface.grain > 0.0:
        # Grains of sand or snow shifting under the body: a short shower of tiny noise bursts.
        grain_n = min(n, int(0.09 * sample_rate))
        t = np.arange(grain_n) / sample_rate
        sparse = (rng.random(grain_n) < 0.02) * rng.standard_normal(grain_n)
        grains = filter_fft(sparse, sample_rate, bandpass(*surface.grain_band, order=1))
        grains *= np.exp(-t / 0.03)
        grains /= max(float(np.max(np.abs(grains))), 1e-9)
        sound[:grain_n] += surface.grain * min(1.0, speed / 3.0) * grains

    # Radiated energy grows with v², so amplitude with v; a soft knee keeps 30 m/s from
    # flattening everything else in the limiter.
    amplitude = mat_a.loudness * 1.6 * np.tanh(speed / 9.0)
    left, right = pan_gains(float(event.get("screen_x") or 0.0))
    return np.stack([sound * (amplitude * left), sound * (amplitude * right)])


def render_impacts(
    plan: ScenePlan,
    events: list[dict[str, Any]],
    n: int,
    sample_rate: int,
    rng: np.random.Generator,
) -> np.ndarray:
    out = np.zeros((2, n))
    surface = SURFACES[SURFACE_BY_SETTING.get(plan.setting, "soil")]
    bodies = {obj.id: (obj.material, float(obj.size)) for obj in plan.objects}
    for event in collisions(events):
        start = round(float(event["t"]) * sample_rate)
        if start >= n:
            continue
        add_at(out, start, _impact_sound(event, bodies, surface, sample_rate, rng))
    return out
