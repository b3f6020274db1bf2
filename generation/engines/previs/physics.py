"""Rigid-body physics for previs: gravity, ground contact, bounce, friction, rolling, collisions.

Every body is a *rounded box*: an axis-aligned core box (half-extents ``core``) swept by a sphere
(``radius``). A sphere is a zero box with a radius, a crate is a box with no radius, a standing
cylinder is approximated by its box and a lying (rolling) cylinder by its sphere. One formula then
gives the contact normal and depth for every pair: sphere-sphere and box-sphere exactly, box-box
exactly because boxes never rotate here (they slide and stop, rather than tumble). Spheres and
lying cylinders carry angular velocity, so friction turns sliding into rolling and a ball spins.

The integrator is semi-implicit Euler at a fixed step (``SUBSTEPS`` per video frame), with
impulses for contacts: all bodies advance together as (N, 3) tensors in float64 on the CPU,
which for a handful of bodies is faster than any device and exactly reproducible.

Orbiting bodies are kinematic: they follow their circle regardless of contacts (others bounce off
them as off an immovable body). The circle is implied by the plan, which only has a position and
a velocity per object: it is centred on the vertical axis through the nearest non-orbiting body
(or the origin when there is none), in the horizontal plane of the orbiter's start position, at
the angular speed that its velocity gives on that radius.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from generation.engines.base import SceneObject

from .vocab import FIGURE_HEIGHT, OBJECTS

SUBSTEPS = 10  # per frame: 240 Hz at 24 fps keeps a 10 m/s ball from tunnelling a 5 cm body
REST_SPEED = 0.12  # m/s: a slower approach to the ground is resting contact, not a bounce
SLEEP_SPEED = 0.04  # m/s: below this in contact, a body stops (no jitter, it "comes to rest")
EVENT_SPEED = 0.15  # m/s: slower contacts are not recorded as collisions


@dataclass(frozen=True)
class Ground:
    restitution: float  # multiplies a body's own restitution
    friction: float  # combined with a body's coefficient by geometric mean
    rolling: float  # rolling-resistance coefficient (deceleration = rolling * g)
    gravity: float = 9.81


GROUNDS: dict[str, Ground] = {
    "studio": Ground(1.0, 0.5, 0.01),
    "street": Ground(0.95, 0.7, 0.015),
    "city": Ground(0.95, 0.7, 0.015),
    # Dry sand would swallow a bounce; previs assumes the firm sand a ball can bounce on.
    "beach": Ground(0.85, 0.6, 0.03),
    "desert": Ground(0.75, 0.6, 0.05),
    "snow": Ground(0.6, 0.15, 0.03),
    "forest": Ground(0.8, 0.6, 0.04),
    "field": Ground(0.8, 0.6, 0.04),
    "space": Ground(0.85, 0.5, 0.02, gravity=1.62),
}


def ground_for(setting: str) -> Ground:
    return GROUNDS.get(setting, GROUNDS["studio"])


def is_figure(obj: SceneObject) -> bool:
    kind = OBJECTS.get(obj.label)
    return obj.cameo is not None or (kind is not None and kind.figure)


def lies_down(obj: SceneObject) -> bool:
    """A cylinder that moves along the ground rolls on its side; otherwise it stands."""
    return (
        obj.shape == "cylinder"
        and not is_figure(obj)
        and obj.motion in {"rolls", "thrown", "bounces", "falls"}
    )


def rest_height(obj: SceneObject) -> float:
    """Height of the body's centre when it rests on the ground."""
    if is_figure(obj):
        return FIGURE_HEIGHT / 2
    return float(obj.size)


def bounds_radius(obj: SceneObject) -> float:
    """Radius of a sphere around the body's centre that contains all of it."""
    if is_figure(obj):
        return FIGURE_HEIGHT / 2 + 0.05
    if obj.shape == "box":
        return float(obj.size) * math.sqrt(3.0)
    if obj.shape == "cylinder":
        return float(obj.size) * math.sqrt(2.0)
    return float(obj.size)


def roll_axis(velocity: tuple[float, float, float]) -> np.ndarray:
    """World axis a lying cylinder rolls about: horizontal, across its direction of travel."""
    vx, _, vz = velocity
    speed = math.hypot(vx, vz)
    if speed < 1e-6:
        return np.array([0.0, 0.0, 1.0])
    return np.array([-vz / speed, 0.0, vx / speed])


def _frame_from_y(axis: np.ndarray) -> np.ndarray:
    """A rotation taking the local +y axis (a cylinder's axis) to ``axis``."""
    y = axis / np.linalg.norm(axis)
    helper = np.array([0.0, 1.0, 0.0]) if abs(y[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, y)
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=1)


@dataclass
class Trajectory:
    """Body states sampled at the video's frame times."""

    ids: list[str]
    times: np.ndarray  # (T,)
    positions: np.ndarray  # (T, N, 3)
    velocities: np.ndarray  # (T, N, 3)
    rotations: np.ndarray  # (T, N, 3, 3), body to world
    events: list[dict[str, Any]]


@contextmanager
def single_thread():
    """Run tiny tensor work on one thread.

    Measured here: the step below takes ~0.25 ms on one thread but 2-4 ms with two, because
    every op on (N, 3) tensors then waits on the other thread's wake-up, badly so when the
    machine is busy. The previous setting is restored afterwards.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def simulate(
    objects: list[SceneObject],
    *,
    duration_s: float,
    fps: int,
    setting: str = "studio",
    substeps: int = SUBSTEPS,
    should_cancel: Callable[[], bool] | None = None,
) -> Trajectory:
    """Simulate ``objects`` for ``round(duration_s * fps)`` frames and sample each frame."""
    with single_thread():
        return _simulate(objects, duration_s, fps, setting, substeps, should_cancel)


def _simulate(objects, duration_s, fps, setting, substeps, should_cancel) -> Trajectory:
    frames = max(1, round(duration_s * fps))
    times = np.arange(frames) / fps
    n = len(objects)
    if n == 0:
        return Trajectory(
            [],
            times,
            np.zeros((frames, 0, 3)),
            np.zeros((frames, 0, 3)),
            np.zeros((frames, 0, 3, 3)),
            [],
        )
    ground = ground_for(setting)
    dt = 1.0 / (fps * substeps)
    f64 = torch.float64

    pos = torch.tensor([o.position for o in objects], dtype=f64)
    vel = torch.tensor([o.velocity for o in objects], dtype=f64)
    mass = torch.tensor([max(o.mass, 1e-3) for o in objects], dtype=f64)
    kinematic = torch.tensor([o.motion == "orbits" for o in objects])
    dyn = ~kinematic
    inv_m = torch.where(dyn, 1.0 / mass, torch.zeros_like(mass))
    hh = torch.tensor([rest_height(o) for o in objects], dtype=f64)
    restitution = torch.tensor([min(max(o.restitution, 0.0), 1.0) for o in objects], dtype=f64)
    friction = torch.tensor(
        [math.sqrt(max(o.friction, 0.0) * ground.friction) for o in objects], dtype=f64
    )

    core = torch.zeros(n, 3, dtype=f64)
    radius = torch.zeros(n, dtype=f64)
    inv_i = torch.zeros(n, dtype=f64)  # 1 / moment of inertia; 0 for bodies that do not turn
    axis = torch.zeros(n, 3, dtype=f64)  # the only axis a lying cylinder may turn about
    locked = torch.zeros(n, dtype=torch.bool)
    rot0 = np.tile(np.eye(3), (n, 1, 1))
    for k, obj in enumerate(objects):
        s = float(obj.size)
        if is_figure(obj):
            core[k] = torch.tensor([0.12, FIGURE_HEIGHT / 2 - 0.18, 0.08], dtype=f64)
            radius[k] = 0.18
        elif obj.shape == "box":
            core[k] = s
        elif lies_down(obj):
            radius[k] = s
            inv_i[k] = 1.0 / (0.5 * float(mass[k]) * s * s)
            a = roll_axis(obj.velocity)
            axis[k] = torch.tensor(a, dtype=f64)
            locked[k] = True
            rot0[k] = _frame_from_y(a)
        elif obj.shape == "cylinder":
            core[k] = s
        else:
            radius[k] = s
            inv_i[k] = 1.0 / (0.4 * float(mass[k]) * s * s)
    inv_i = torch.where(dyn, inv_i, torch.zeros_like(inv_i))
    pos[:, 1] = torch.maximum(pos[:, 1], torch.where(dyn, hh, torch.full_like(hh, -1e9)))

    # Rolling starts as rolling: a body launched along the ground spins to match its speed.
    omega = torch.zeros(n, 3, dtype=f64)
    for k, obj in enumerate(objects):
        if obj.motion == "rolls" and float(inv_i[k]) > 0:
            vx, _, vz = obj.velocity
            omega[k] = torch.tensor([vz / hh[k], 0.0, -vx / hh[k]], dtype=f64)

    orbit = _orbits(objects, pos, vel, kinematic)

    steps = frames * substeps
    gravity = ground.gravity
    e_ground = restitution * ground.restitution
    rolling_decel = ground.rolling * gravity * dt
    rollers = inv_i > 0
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    pair_ok = upper & ((inv_m[:, None] + inv_m[None, :]) > 0)
    inv_m_sum = (inv_m[:, None] + inv_m[None, :]).clamp(min=1e-12)
    e_pair = torch.sqrt(restitution[:, None] * restitution[None, :])
    rad_sum = radius[:, None] + radius[None, :]
    core_sum = core[:, None, :] + core[None, :, :]

    out_pos = np.empty((frames, n, 3))
    out_vel = np.empty((frames, n, 3))
    out_rot = np.empty((frames, n, 3, 3))
    rot = rot0.copy()
    turned = torch.zeros(n, 3, dtype=f64)  # rotation vector accumulated since the last frame
    ground_hits = torch.zeros(steps, n, dtype=f64)
    pair_hits = torch.zeros(steps, n, n, dtype=f64)
    pos_hist = torch.zeros(steps, n, 3, dtype=f64)

    for step in range(steps):
        if step % substeps == 0:
            f = step // substeps
            rot = _apply_rotation(rot, turned.numpy())
            turned.zero_()
            out_pos[f] = pos.numpy()
            out_vel[f] = vel.numpy()
            out_rot[f] = rot
            if should_cancel is not None and f % 12 == 0 and should_cancel():
                from generation.engines.base import Cancelled

                raise Cancelled("cancelled during physics")
        t = step * dt

        vel[:, 1] -= gravity * dt * dyn
        pos += vel * dt * dyn[:, None]
        if orbit is not None:
            o_pos, o_vel, o_omega = orbit(t + dt)
            pos = torch.where(kinematic[:, None], o_pos, pos)
            vel = torch.where(kinematic[:, None], o_vel, vel)
            omega = torch.where(kinematic[:, None], o_omega, omega)

        # Ground contact: project out of the ground, bounce or rest, then Coulomb friction.
        contact = dyn & (pos[:, 1] < hh)
        pos[:, 1] = torch.where(contact, hh, pos[:, 1])
        vy = vel[:, 1]
        falling = contact & (vy < 0)
        impact = torch.where(falling, -vy, torch.zeros_like(vy))
        ground_hits[step] = impact
        new_vy = torch.where(impact > REST_SPEED, impact * e_ground, torch.zeros_like(vy))
        new_vy = torch.where(falling, new_vy, vy)
        normal_dv = new_vy - vy  # per unit mass; equals g·dt while resting
        vel[:, 1] = new_vy

        slip_x = vel[:, 0] + hh * omega[:, 2]
        slip_z = vel[:, 2] - hh * omega[:, 0]
        slip = torch.sqrt(slip_x * slip_x + slip_z * slip_z).clamp(min=1e-12)
        k_t = inv_m + hh * hh * inv_i
        impulse = torch.minimum(
            slip / k_t.clamp(min=1e-12), friction * normal_dv / inv_m.clamp(min=1e-12)
        )
        impulse = torch.where(contact, impulse, torch.zeros_like(impulse))
        jx = -impulse * slip_x / slip
        jz = -impulse * slip_z / slip
        vel[:, 0] += jx * inv_m
        vel[:, 2] += jz * inv_m
        omega[:, 0] += inv_i * (-hh * jz)
        omega[:, 2] += inv_i * (hh * jx)

        # Rolling resistance: sand and grass slow a ball that friction alone would let roll on.
        roll = contact & rollers
        speed = torch.sqrt(vel[:, 0] ** 2 + vel[:, 2] ** 2).clamp(min=1e-12)
        scale = torch.where(
            roll, (speed - rolling_decel).clamp(min=0.0) / speed, torch.ones_like(speed)
        )
        vel[:, 0] *= scale
        vel[:, 2] *= scale
        omega[:, 0] *= scale
        omega[:, 2] *= scale

        # Body-body contacts between rounded boxes (see the module docstring).
        delta = pos[None, :, :] - pos[:, None, :]  # [i, j] = p_j - p_i
        gap = delta.abs() - core_sum
        outside = gap.clamp(min=0.0)
        dist = torch.sqrt((outside * outside).sum(-1))
        sign = torch.where(delta < 0, -1.0, 1.0).to(f64)
        deepest, along = gap.max(dim=-1)
        face_normal = sign * (torch.arange(3)[None, None, :] == along[..., None]).to(f64)
        separated = dist > 1e-9
        normal = torch.where(
            separated[..., None], sign * outside / dist.clamp(min=1e-12)[..., None], face_normal
        )
        depth = rad_sum - torch.where(separated, dist, deepest)
        touching = pair_ok & (depth > 0)
        rel = ((vel[None, :, :] - vel[:, None, :]) * normal).sum(-1)
        approaching = touching & (rel < 0)
        pair_hits[step] = torch.where(approaching, -rel, torch.zeros_like(rel))
        j = torch.where(approaching, -(1.0 + e_pair) * rel / inv_m_sum, torch.zeros_like(rel))
        jv = j[..., None] * normal
        vel += inv_m[:, None] * (jv.sum(0) - jv.sum(1))
        push = torch.where(touching, 0.8 * depth / inv_m_sum, torch.zeros_like(depth))
        pv = push[..., None] * normal
        pos += inv_m[:, None] * (pv.sum(0) - pv.sum(1))

        # A lying cylinder turns only about its own axis.
        omega = torch.where(locked[:, None], (omega * axis).sum(-1, keepdim=True) * axis, omega)

        # Sleep: a body in contact that has all but stopped stops, so it really comes to rest.
        still = (
            contact
            & (vel.abs().amax(-1) < SLEEP_SPEED)
            & ((omega.abs().amax(-1) * hh) < SLEEP_SPEED)
        )
        vel = torch.where(still[:, None], torch.zeros_like(vel), vel)
        omega = torch.where(still[:, None], torch.zeros_like(omega), omega)

        turned += omega * dt
        pos_hist[step] = pos

    events = _events(objects, ground_hits, pair_hits, pos_hist, radius, core, dt)
    return Trajectory([o.id for o in objects], times, out_pos, out_vel, out_rot, events)


def _orbits(objects, pos, vel, kinematic):
    """The kinematic circle of each orbiting body, as a function of time (see module docstring)."""
    if not bool(kinematic.any()):
        return None
    n = len(objects)
    centre = torch.zeros(n, 3, dtype=torch.float64)
    rate = torch.zeros(n, dtype=torch.float64)
    anchors = [k for k in range(n) if not bool(kinematic[k])]
    for k in range(n):
        if not bool(kinematic[k]):
            continue
        p = pos[k]
        c = torch.tensor([0.0, float(p[1]), 0.0], dtype=torch.float64)
        if anchors:
            nearest = min(anchors, key=lambda a: (float(torch.dist(pos[a][[0, 2]], p[[0, 2]])), a))
            c[0], c[2] = pos[nearest][0], pos[nearest][2]
        r = p - c
        r2 = float(r[0] ** 2 + r[2] ** 2)
        if r2 < 1e-6:
            r = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
            r2 = 1.0
            pos[k] = c + r
        # Angular speed about +y from r x v, so the given velocity's sense and size are kept.
        rate[k] = (r[2] * vel[k][0] - r[0] * vel[k][2]) / r2
        centre[k] = c
    offset0 = pos - centre

    def at(t: float):
        angle = rate * t
        cos, sin = torch.cos(angle), torch.sin(angle)
        ox, oz = offset0[:, 0], offset0[:, 2]
        # Rotation about +y by `angle`: x' = x cos + z sin, z' = -x sin + z cos.
        rx = ox * cos + oz * sin
        rz = -ox * sin + oz * cos
        p = torch.stack([centre[:, 0] + rx, centre[:, 1], centre[:, 2] + rz], dim=-1)
        v = torch.stack([rate * rz, torch.zeros_like(rx), -rate * rx], dim=-1)
        w = torch.stack([torch.zeros_like(rate), rate, torch.zeros_like(rate)], dim=-1)
        return p, v, w

    return at


def _apply_rotation(rot: np.ndarray, turned: np.ndarray) -> np.ndarray:
    """Rotate each body by its accumulated rotation vector (Rodrigues), in world axes."""
    angle = np.linalg.norm(turned, axis=-1)
    if not np.any(angle > 0):
        return rot
    k = turned / np.maximum(angle, 1e-12)[:, None]
    zero = np.zeros(len(k))
    kmat = np.stack(
        [
            np.stack([zero, -k[:, 2], k[:, 1]], -1),
            np.stack([k[:, 2], zero, -k[:, 0]], -1),
            np.stack([-k[:, 1], k[:, 0], zero], -1),
        ],
        axis=1,
    )
    sin = np.sin(angle)[:, None, None]
    cos = np.cos(angle)[:, None, None]
    turn = np.eye(3)[None] + sin * kmat + (1.0 - cos) * (kmat @ kmat)
    out = turn @ rot
    # Keep the frames orthonormal over thousands of small turns.
    u, _, vt = np.linalg.svd(out)
    return u @ vt


def _events(objects, ground_hits, pair_hits, pos_hist, radius, core, dt) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    g = ground_hits.numpy()
    p = pos_hist.numpy()
    for step, k in zip(*np.nonzero(g >= EVENT_SPEED), strict=True):
        obj = objects[k]
        x, _, z = p[step, k]
        events.append(_event(step * dt, obj, "ground", g[step, k], (x, 0.0, z)))
    pair = pair_hits.numpy()
    r = radius.numpy()
    c = core.numpy()
    for step, i, j in zip(*np.nonzero(pair >= EVENT_SPEED), strict=True):
        a, b = p[step, i], p[step, j]
        # The contact lies between the two surfaces, weighted by how far each reaches.
        reach_a = r[i] + float(np.abs(c[i]).max())
        reach_b = r[j] + float(np.abs(c[j]).max())
        point = a + (b - a) * (reach_a / max(reach_a + reach_b, 1e-9))
        events.append(_event(step * dt, objects[i], objects[j].id, pair[step, i, j], tuple(point)))
    events.sort(key=lambda e: (e["t"], e["a"], e["b"]))
    return events


def _event(t: float, obj: SceneObject, other: str, speed: float, point) -> dict[str, Any]:
    return {
        "t": round(float(t), 4),
        "type": "collision",
        "a": obj.id,
        "b": other,
        "speed": round(float(speed), 4),
        "position": [round(float(v), 4) for v in point],
        "material": obj.material,
        "size": float(obj.size),
    }
