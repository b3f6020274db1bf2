"""How a setting at a time of day, under a lighting and a mood, looks: a handful of numbers.

All colours are linear RGB radiance; the renderer tone-maps and grades at the end. The sun (or
the moon, or a studio key light) is one distant light; ambient light is a sky/ground hemisphere.
The palettes were tuned by eye on contact sheets: a sunset is a low warm sun over an orange
horizon under a violet zenith, with long soft shadows; noon is a high white sun under blue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from generation.engines.base import ScenePlan


def _c(r: float, g: float, b: float) -> np.ndarray:
    return np.array([r, g, b], dtype=np.float32)


@dataclass
class Look:
    setting: str
    time_of_day: str
    sun_dir: np.ndarray  # unit vector toward the key light
    sun_color: np.ndarray  # direct light on a surface facing it
    disc_color: np.ndarray  # the visible sun or moon disc (0 for none)
    disc_cos: float  # cos of the disc's angular radius
    zenith: np.ndarray
    horizon: np.ndarray
    glow: np.ndarray  # halo around the sun
    glow_width: float  # larger is tighter
    band: np.ndarray  # warm band along the horizon toward the sun
    amb_sky: np.ndarray  # ambient from above, on objects and the ground
    amb_ground: np.ndarray  # ambient bounced from the ground, on objects
    ground: str  # "sand" | "grass" | "asphalt" | "snow" | "floor" | "regolith" | "dune" | "soil"
    albedo: np.ndarray
    fog: np.ndarray
    fog_density: float
    skyline: str  # "" | "trees" | "city" | "street" | "mountains" | "dunes" | "hills"
    skyline_color: np.ndarray
    stars: float
    water: bool
    shore_z: float  # distance of the shoreline ahead of the first camera
    penumbra: float  # shadow softness: penumbra width per metre from the occluder
    shadow_strength: float
    exposure: float
    saturation: float
    tint: np.ndarray
    contrast: float
    vignette: float
    rim: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (dir, colour)
    sky_falloff: float = 5.0  # how fast the horizon colour gives way to the zenith's
    windows: float = 0.0  # lit windows in city skylines at night
    planet: bool = False  # a planet hangs in the sky (space)

    @property
    def direct_fraction(self) -> float:
        """Share of the ground's light that comes straight from the key (what a shadow removes)."""
        direct = float(np.mean(self.sun_color)) * max(float(self.sun_dir[1]), 0.0)
        ambient = float(np.mean(self.amb_sky))
        return direct / max(direct + ambient, 1e-6)


def direction(azimuth_deg: float, elevation_deg: float, forward: np.ndarray) -> np.ndarray:
    """A direction at ``azimuth`` right of ``forward`` (horizontal) and ``elevation`` above."""
    fwd = np.array([forward[0], 0.0, forward[2]], dtype=np.float64)
    norm = np.linalg.norm(fwd)
    fwd = fwd / norm if norm > 1e-6 else np.array([0.0, 0.0, 1.0])
    right = np.array([fwd[2], 0.0, -fwd[0]])  # up x forward: the camera's right
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    horizontal = fwd * math.cos(az) + right * math.sin(az)
    v = horizontal * math.cos(el) + np.array([0.0, 1.0, 0.0]) * math.sin(el)
    return (v / np.linalg.norm(v)).astype(np.float32)


GROUND_ALBEDO = {
    "sand": _c(0.68, 0.52, 0.32),
    "dune": _c(0.70, 0.45, 0.24),
    "grass": _c(0.07, 0.15, 0.035),
    "soil": _c(0.07, 0.09, 0.035),
    "asphalt": _c(0.07, 0.07, 0.08),
    "snow": _c(0.85, 0.88, 0.92),
    "floor": _c(0.4, 0.4, 0.42),
    "regolith": _c(0.30, 0.29, 0.28),
}
SETTING_GROUND = {
    "beach": ("sand", ""),
    "desert": ("dune", "dunes"),
    "field": ("grass", "hills"),
    "forest": ("soil", "trees"),
    "street": ("asphalt", "street"),
    "city": ("asphalt", "city"),
    "snow": ("snow", "mountains"),
    "studio": ("floor", ""),
    "space": ("regolith", ""),
}
MOOD_GRADE = {
    # saturation, tint, contrast
    "calm": (1.0, _c(1.0, 1.0, 1.0), 1.0),
    "joyful": (1.15, _c(1.04, 1.0, 0.95), 1.05),
    "tense": (0.8, _c(0.95, 1.0, 1.04), 1.12),
    "melancholy": (0.7, _c(0.94, 0.98, 1.06), 0.95),
    "epic": (1.1, _c(1.05, 1.0, 0.94), 1.12),
    "mysterious": (0.85, _c(0.97, 0.95, 1.06), 1.05),
}


def build_look(plan: ScenePlan, forward: np.ndarray, half_hfov_deg: float) -> Look:
    """The look of ``plan``, with the key light placed relative to the first camera direction.

    A low sun is put inside the first shot's frame, slightly right of centre, because a sunset
    or sunrise the camera cannot see does not read as one; a high sun is put behind the camera
    on the right so objects are lit from the front and their shadows fall back-left.
    """
    setting = plan.setting if plan.setting in SETTING_GROUND else "studio"
    tod = plan.time_of_day if plan.time_of_day in ("day", "sunrise", "sunset", "night") else "day"
    ground, skyline = SETTING_GROUND[setting]
    in_frame = 0.45 * half_hfov_deg

    if tod == "sunset":
        sun = direction(in_frame, 5.0, forward)
        look = dict(
            sun_color=_c(2.6, 1.2, 0.42),
            disc_color=_c(5.0, 2.5, 0.8),
            disc_cos=math.cos(math.radians(1.25)),
            zenith=_c(0.035, 0.035, 0.13),
            horizon=_c(0.62, 0.2, 0.06),
            glow=_c(1.4, 0.55, 0.12),
            glow_width=300.0,
            band=_c(0.55, 0.2, 0.04),
            amb_sky=_c(0.16, 0.11, 0.19),
            amb_ground=_c(0.2, 0.1, 0.05),
            fog=_c(0.55, 0.2, 0.08),
            exposure=1.1,
        )
    elif tod == "sunrise":
        sun = direction(in_frame, 6.5, forward)
        look = dict(
            sun_color=_c(2.3, 1.45, 0.75),
            disc_color=_c(5.0, 3.4, 1.6),
            disc_cos=math.cos(math.radians(1.25)),
            zenith=_c(0.07, 0.11, 0.28),
            horizon=_c(0.68, 0.4, 0.28),
            glow=_c(1.2, 0.7, 0.32),
            glow_width=250.0,
            band=_c(0.45, 0.25, 0.12),
            amb_sky=_c(0.2, 0.2, 0.3),
            amb_ground=_c(0.16, 0.12, 0.08),
            fog=_c(0.6, 0.42, 0.34),
            exposure=1.1,
        )
    elif tod == "night":
        sun = direction(-35.0, 38.0, forward)
        look = dict(
            sun_color=_c(0.22, 0.28, 0.42),
            disc_color=_c(6.0, 6.2, 6.6),
            disc_cos=math.cos(math.radians(1.4)),
            zenith=_c(0.004, 0.007, 0.022),
            horizon=_c(0.025, 0.035, 0.07),
            glow=_c(0.03, 0.035, 0.05),
            glow_width=30.0,
            band=_c(0.0, 0.0, 0.0),
            amb_sky=_c(0.03, 0.04, 0.07),
            amb_ground=_c(0.01, 0.012, 0.02),
            fog=_c(0.025, 0.035, 0.07),
            exposure=2.6,
        )
    else:
        sun = direction(140.0, 52.0, forward)
        look = dict(
            sun_color=_c(1.7, 1.62, 1.5),
            disc_color=_c(40.0, 38.0, 34.0),
            disc_cos=math.cos(math.radians(1.2)),
            zenith=_c(0.09, 0.22, 0.58),
            horizon=_c(0.55, 0.68, 0.85),
            glow=_c(0.35, 0.35, 0.3),
            glow_width=40.0,
            band=_c(0.0, 0.0, 0.0),
            amb_sky=_c(0.24, 0.29, 0.42),
            amb_ground=_c(0.14, 0.12, 0.09),
            fog=_c(0.62, 0.72, 0.86),
            exposure=0.8,
        )

    albedo = GROUND_ALBEDO[ground]
    stars = 1.0 if tod == "night" else 0.0
    fog_density = 0.012
    windows = 0.0
    rim: list[tuple[np.ndarray, np.ndarray]] = []
    planet = False
    if setting == "studio":
        # A seamless backdrop: the "sky" is the wall, and the floor fades into it.
        sun = direction(-120.0, 50.0, forward) if tod == "day" else sun
        wall = 1.0 if tod == "day" else 0.5
        look.update(
            zenith=_c(0.16, 0.16, 0.18) * wall,
            horizon=_c(0.36, 0.36, 0.38) * wall,
            glow=_c(0.0, 0.0, 0.0),
            band=_c(0.0, 0.0, 0.0),
            disc_color=_c(0.0, 0.0, 0.0),
            fog=_c(0.36, 0.36, 0.38) * wall,
        )
        if tod == "day":
            look.update(sun_color=_c(1.7, 1.66, 1.6), amb_sky=_c(0.3, 0.3, 0.33), exposure=0.9)
        fog_density = 0.09
        stars = 0.0
    elif setting == "space":
        look.update(
            zenith=_c(0.0, 0.0, 0.004),
            horizon=_c(0.006, 0.006, 0.012),
            glow=_c(0.05, 0.05, 0.05),
            band=_c(0.0, 0.0, 0.0),
            sun_color=_c(2.6, 2.5, 2.4),
            disc_color=_c(50.0, 48.0, 44.0),
            amb_sky=_c(0.02, 0.02, 0.03),
            amb_ground=_c(0.03, 0.03, 0.03),
            fog=_c(0.006, 0.006, 0.012),
            exposure=1.0,
        )
        sun = direction(120.0, 35.0, forward)
        stars = 1.0
        fog_density = 0.004
        planet = True
    elif setting == "city" and tod == "night":
        windows = 1.0
    if plan.lighting == "neon":
        rim = [
            (direction(-70.0, 15.0, forward), _c(1.6, 0.15, 1.1)),
            (direction(80.0, 20.0, forward), _c(0.1, 0.9, 1.4)),
        ]
        windows = max(windows, 0.6 if tod == "night" else 0.0)
    if tod == "night" and setting in ("city", "street"):
        # Street lights and windows lift a city night well above moonlight.
        look["amb_sky"] = look["amb_sky"] + _c(0.05, 0.04, 0.05)
        look["horizon"] = _c(0.06, 0.045, 0.07)

    lighting = plan.lighting
    penumbra, shadow_strength = 0.02, 0.85
    if lighting == "soft" or tod in ("sunset", "sunrise"):
        penumbra, shadow_strength = 0.06, 0.75
    if lighting == "soft" and setting == "studio":
        penumbra = 0.1
    if lighting == "hard":
        penumbra, shadow_strength = 0.012, 0.9
    if lighting == "moody":
        look["exposure"] = look["exposure"] * 0.8
    sat, tint, contrast = MOOD_GRADE.get(plan.mood, MOOD_GRADE["calm"])
    return Look(
        setting=setting,
        time_of_day=tod,
        sun_dir=sun,
        ground=ground,
        albedo=albedo,
        fog_density=fog_density,
        skyline=skyline,
        skyline_color=_skyline_color(skyline, tod),
        stars=stars,
        water=setting == "beach",
        shore_z=9.0,
        penumbra=penumbra,
        shadow_strength=shadow_strength,
        saturation=sat,
        tint=tint,
        contrast=contrast,
        vignette=0.22 if lighting in ("moody", "neon") else 0.14,
        rim=rim,
        windows=windows,
        planet=planet,
        **look,
    )


def _skyline_color(skyline: str, tod: str) -> np.ndarray:
    dark = tod == "night"
    table = {
        "trees": _c(0.02, 0.05, 0.02),
        "city": _c(0.20, 0.24, 0.32),
        "street": _c(0.16, 0.17, 0.20),
        "mountains": _c(0.30, 0.36, 0.48),
        "dunes": _c(0.55, 0.33, 0.16),
        "hills": _c(0.10, 0.20, 0.10),
        "": _c(0.0, 0.0, 0.0),
    }
    color = table.get(skyline, table[""])
    if dark:
        return color * 0.08
    if tod in ("sunset", "sunrise"):
        return color * _c(0.6, 0.4, 0.45)
    return color
