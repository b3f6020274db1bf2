"""Camera paths: each shot framed on the simulated action, then moved as the plan asks.

Framing is computed from where the bodies actually go (the physics has already run), so the
action stays on screen whatever the plan's numbers: the camera looks at the centre of the
shot's action box from far enough for the box to fit the frame with a margin. Moves are eased
(smoothstep) so they start and stop like a real operator's.

Screen convention: the camera's right is ``up x forward``; looking down +z, +x is screen right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from generation.engines.base import ScenePlan

from .physics import Trajectory, bounds_radius, is_figure
from .vocab import FIGURE_HEIGHT

UP = np.array([0.0, 1.0, 0.0])
NEAR = 0.05


@dataclass
class CameraFrame:
    position: np.ndarray
    target: np.ndarray
    fov_y: float  # degrees, vertical
    shot: int
    move: str

    def basis(self, aspect: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
        """(forward, right, up) unit vectors and the tangents of the half field of view."""
        forward = self.target - self.position
        forward = forward / max(np.linalg.norm(forward), 1e-9)
        right = np.cross(UP, forward)
        norm = np.linalg.norm(right)
        right = right / norm if norm > 1e-6 else np.array([1.0, 0.0, 0.0])
        up = np.cross(forward, right)
        tan_v = math.tan(math.radians(self.fov_y) / 2.0)
        return forward, right, up, tan_v * aspect, tan_v

    def project(self, points: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) of world points, and their depth along the view (N,)."""
        forward, right, up, tan_h, tan_v = self.basis(width / height)
        rel = np.asarray(points, dtype=np.float64) - self.position
        depth = rel @ forward
        safe = np.where(depth > NEAR, depth, NEAR)
        sx = (rel @ right) / safe / tan_h
        sy = (rel @ up) / safe / tan_v
        px = (sx + 1.0) * 0.5 * width
        py = (1.0 - sy) * 0.5 * height
        return np.stack([px, py], axis=-1), depth

    def to_dict(self, index: int, fps: int) -> dict:
        return {
            "frame": index,
            "t": round(index / fps, 4),
            "shot": self.shot,
            "move": self.move,
            "position": [round(float(v), 4) for v in self.position],
            "target": [round(float(v), 4) for v in self.target],
            "fov_y": round(float(self.fov_y), 3),
        }


def vertical_fov(width: int, height: int) -> float:
    aspect = width / height
    if aspect < 0.8:
        return 60.0
    if aspect <= 1.25:
        return 50.0
    return 38.0


def _ease(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3.0 - 2.0 * u)


def _action_box(plan: ScenePlan, traj: Trajectory, frames: range) -> tuple[np.ndarray, np.ndarray]:
    if not plan.objects or len(frames) == 0:
        return np.array([-1.6, 0.0, -1.0]), np.array([1.6, 1.2, 1.0])
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for k, obj in enumerate(plan.objects):
        p = traj.positions[frames.start : frames.stop, k]
        r = bounds_radius(obj) if not is_figure(obj) else 0.35
        top = FIGURE_HEIGHT if is_figure(obj) else None
        lo = np.minimum(lo, p.min(axis=0) - r)
        hi = np.maximum(hi, p.max(axis=0) + r)
        if top is not None:
            hi[1] = max(hi[1], top)
    lo[1] = 0.0
    # A sliver of action still deserves a stage around it.
    centre = (lo + hi) / 2.0
    half = np.maximum((hi - lo) / 2.0, [0.9, 0.5, 0.5])
    return centre - half, centre + half


def _movers_x(plan: ScenePlan, traj: Trajectory, frames: range) -> np.ndarray | None:
    moving = [k for k, o in enumerate(plan.objects) if o.motion not in ("static", "falls")]
    if not moving:
        return None
    xs = traj.positions[frames.start : frames.stop][:, moving, 0].mean(axis=1)
    # A centred moving average keeps a followed bounce from jerking the frame.
    width = 9
    padded = np.pad(xs, width // 2, mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def camera_path(
    plan: ScenePlan, traj: Trajectory, width: int, height: int, fps: int
) -> list[CameraFrame]:
    total = len(traj.times)
    fov = vertical_fov(width, height)
    tan_v = math.tan(math.radians(fov) / 2.0)
    tan_h = tan_v * width / height
    out: list[CameraFrame] = []
    edges = np.round(np.cumsum([0.0] + [s.duration_s for s in plan.shots]) * fps).astype(int)
    edges[-1] = total
    for s, shot in enumerate(plan.shots):
        frames = range(int(edges[s]), int(max(edges[s + 1], edges[s])))
        if len(frames) == 0:
            continue
        lo, hi = _action_box(plan, traj, frames)
        centre = (lo + hi) / 2.0
        half = (hi - lo) / 2.0
        target = np.array([centre[0], min(centre[1], 0.45 * hi[1] + 0.25), centre[2]])
        margin = 1.12
        dist = max(half[0] * margin / tan_h, half[1] * margin / tan_v) + half[2]
        dist = max(dist, 2.2)
        follow = _movers_x(plan, traj, frames)
        n = len(frames)
        for i in range(len(frames)):
            u = _ease(i / max(n - 1, 1))
            # A three-quarter view shows boxes and cylinders as solids rather than flat shapes.
            az, el, d = 14.0, 9.0, dist
            tgt = target.copy()
            move = shot.camera
            if move == "push_in":
                d = dist * (1.2 + (0.68 - 1.2) * u)
            elif move == "orbit":
                az = -38.0 + 76.0 * u
            elif move == "crane":
                el = 3.0 + 37.0 * u
                d = dist * 1.05
            elif move in ("pan", "dolly"):
                d = dist * 0.8
                if follow is not None:
                    x = float(follow[i])
                else:
                    x = centre[0] + half[0] * 0.45 * (2.0 * u - 1.0)
                tgt = np.array([x, target[1], target[2]])
            a, e = math.radians(az), math.radians(el)
            offset = np.array([math.sin(a) * math.cos(e), math.sin(e), -math.cos(a) * math.cos(e)])
            # A pan turns a camera that stays put; a dolly carries it along beside the subject.
            pos = (target if move == "pan" else tgt) + offset * d
            pos[1] = max(pos[1], 0.3)
            out.append(CameraFrame(pos, tgt, fov, s, move))
    while len(out) < total:  # rounding of shot lengths never leaves a frame without a camera
        last = out[-1]
        out.append(
            CameraFrame(last.position.copy(), last.target.copy(), last.fov_y, last.shot, last.move)
        )
    return out[:total]
