from __future__ import annotations

import numpy as np

from generation.engines.base import SAMPLE_RATE, Dialogue, SceneObject, ScenePlan, Shot


def make_plan(
    *,
    setting: str = "studio",
    time_of_day: str = "day",
    mood: str = "calm",
    dialogue: list[Dialogue] | None = None,
    shots: list[Shot] | None = None,
) -> ScenePlan:
    return ScenePlan(
        prompt="a ball bounces",
        setting=setting,
        time_of_day=time_of_day,
        lighting="soft",
        mood=mood,
        objects=[
            SceneObject(
                "ball", "ball", "sphere", (0.8, 0.1, 0.1), 0.2, "rubber", "bounces", (0, 2, 0)
            ),
            SceneObject(
                "crate", "crate", "box", (0.5, 0.3, 0.1), 0.3, "wood", "static", (1, 0.3, 0)
            ),
        ],
        shots=shots or [Shot(2.0, "static"), Shot(2.0, "push_in")],
        dialogue=dialogue or [],
    )


def collision(t: float, *, speed: float = 2.5, screen_x: float = 0.0, material: str = "metal"):
    return {
        "t": t,
        "type": "collision",
        "a": "ball",
        "b": "ground",
        "speed": speed,
        "position": [0.0, 0.0, 0.0],
        "screen_x": screen_x,
        "material": material,
        "size": 0.2,
    }


def window(audio: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    return audio[:, int(start_s * SAMPLE_RATE) : int(end_s * SAMPLE_RATE)].astype(np.float64)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def band_energy(x: np.ndarray, low: float, high: float, sample_rate: int = SAMPLE_RATE) -> float:
    """Energy of the mid (L+R) signal between ``low`` and ``high`` Hz."""
    mid = x.mean(axis=0) if x.ndim == 2 else x
    spectrum = np.abs(np.fft.rfft(mid)) ** 2
    freqs = np.fft.rfftfreq(mid.size, 1.0 / sample_rate)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())
