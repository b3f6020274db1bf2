"""The engine interface: a list of shots in, frames + audio + per-frame camera + events out.

Everything here is plain data (dataclasses of floats, strings and lists) so a plan can be
stored as JSON on the job, shown to the user ("how the prompt was understood") and replayed:
the same plan + seed + engine version must give byte-identical frames.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

SAMPLE_RATE = 48_000
FPS = 24

# Sizes of the OpenAI Videos API, then the engine's own native ones ("WxH").
API_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
NATIVE_SIZES = ("480x854", "854x480", "512x512", "1080x1920", "1920x1080")


@dataclass
class SceneObject:
    """A rigid body. Units are metres, seconds, kilograms; +y is up, the ground is y=0."""

    id: str
    label: str  # the word it came from: "ball", "crate", ...
    shape: str  # "sphere" | "box" | "cylinder"
    color: tuple[float, float, float]  # linear RGB 0..1
    size: float  # radius (sphere, cylinder) or half-extent (box)
    material: str  # "matte" | "plastic" | "rubber" | "metal" | "wood" | "glass" | "stone"
    motion: str  # "static" | "falls" | "bounces" | "rolls" | "slides" | "thrown" | "orbits"
    position: tuple[float, float, float]
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    mass: float = 1.0
    restitution: float = 0.5
    friction: float = 0.5
    cameo: str | None = None  # a cameo reference id when this object is a person's likeness


@dataclass
class Dialogue:
    text: str
    start_s: float
    speaker: str | None = None  # an object id, or None for a narrator


@dataclass
class Shot:
    duration_s: float
    camera: str  # "static" | "pan" | "push_in" | "dolly" | "orbit" | "crane"
    description: str = ""


@dataclass
class ScenePlan:
    """What the engine understood of a prompt or storyboard."""

    prompt: str
    setting: str  # "studio" | "street" | "beach" | "forest" | "space" | "desert" | "snow" | ...
    time_of_day: str  # "day" | "sunrise" | "sunset" | "night"
    lighting: str  # "soft" | "hard" | "neon" | "moody" | ...
    mood: str  # "calm" | "joyful" | "tense" | "melancholy" | "epic" | ...
    objects: list[SceneObject]
    shots: list[Shot]
    dialogue: list[Dialogue] = field(default_factory=list)
    # How each phrase was understood: [{"phrase", "concept", "kind", "score", "how"}]
    matches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return sum(shot.duration_s for shot in self.shots)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RenderRequest:
    plan: ScenePlan
    width: int
    height: int
    seed: int
    fps: int = FPS
    # An RGB uint8 image (H, W, 3) used as the first frame / background plate.
    reference_image: np.ndarray | None = None
    # cameo id -> RGB uint8 reference image of the likeness (supplied by the cameo app).
    cameo_images: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class RenderResult:
    frames: np.ndarray  # uint8, (T, H, W, 3), T = round(duration * fps)
    audio: np.ndarray  # float32, (2, N) stereo at SAMPLE_RATE, N = T * SAMPLE_RATE / fps
    sample_rate: int
    fps: int
    camera: list[dict[str, Any]]  # one per frame: position, target, fov, shot index
    events: list[dict[str, Any]]  # {"t", "type": "collision"|"speech"|..., ...}


ProgressCallback = Callable[[float], None]  # fraction 0..1
CancelCheck = Callable[[], bool]  # True when the job was cancelled: stop promptly


class Cancelled(Exception):
    """Raised by an engine that noticed ``should_cancel()`` mid-render."""


class Engine(Protocol):
    name: str
    version: str

    def plan(
        self, prompt: str, *, seconds: float, storyboard: list[dict] | None = None
    ) -> ScenePlan:
        """Understand a prompt (or a storyboard of shots) as a scene plan."""

    def render(
        self,
        request: RenderRequest,
        *,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> RenderResult:
        """Render the plan. Deterministic for (plan, seed, size, engine version)."""


def plan_from_dict(data: dict[str, Any]) -> ScenePlan:
    """The inverse of ScenePlan.to_dict (plans are stored as JSON on the job)."""
    return ScenePlan(
        prompt=data["prompt"],
        setting=data["setting"],
        time_of_day=data["time_of_day"],
        lighting=data["lighting"],
        mood=data["mood"],
        objects=[
            SceneObject(
                **{
                    **obj,
                    "color": tuple(obj["color"]),
                    "position": tuple(obj["position"]),
                    "velocity": tuple(obj["velocity"]),
                }
            )
            for obj in data["objects"]
        ],
        shots=[Shot(**shot) for shot in data["shots"]],
        dialogue=[Dialogue(**line) for line in data.get("dialogue", [])],
        matches=list(data.get("matches", [])),
    )


# Plan attributes an edit instruction may change, by the ``kind`` its matches record.
_EDITABLE_SCENE = {
    "setting": "setting",
    "time": "time_of_day",
    "lighting": "lighting",
    "mood": "mood",
}
_EDITABLE_OBJECT = ("color", "size", "material")


def merge_edit(base: ScenePlan, edit: ScenePlan) -> ScenePlan:
    """``base`` with what ``edit`` (the plan of an instruction such as "make the ball green")
    says explicitly: scene attributes, the camera, and the colour/size/material of objects it
    names. Everything else, motion and timing included, stays as it was, so with the same seed
    the edited clip moves exactly as the original."""
    explicit = {m["kind"] for m in edit.matches if m.get("how") != "default" and m.get("kind")}
    merged = copy.deepcopy(base)
    merged.prompt = f"{base.prompt}\n{edit.prompt}"
    for kind, attribute in _EDITABLE_SCENE.items():
        if kind in explicit:
            setattr(merged, attribute, getattr(edit, attribute))
    if "camera" in explicit and edit.shots:
        for shot in merged.shots:
            shot.camera = edit.shots[0].camera
    for named in edit.objects:
        for obj in merged.objects:
            if obj.label != named.label:
                continue
            for attribute in _EDITABLE_OBJECT:
                if attribute in explicit:
                    setattr(obj, attribute, getattr(named, attribute))
    merged.dialogue = [*merged.dialogue, *edit.dialogue]
    merged.matches = [
        *base.matches,
        *({**m, "edit": True} for m in edit.matches if m.get("how") != "default"),
    ]
    return merged
