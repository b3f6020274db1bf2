"""Previs physics: gravity, bounce, friction, rolling, collisions, orbits, determinism."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from generation.engines.base import Cancelled, SceneObject
from generation.engines.previs.physics import GROUNDS, simulate

FPS = 24


def ball(**kw) -> SceneObject:
    fields = dict(
        id="ball-1",
        label="ball",
        shape="sphere",
        color=(0.7, 0.01, 0.01),
        size=0.25,
        material="rubber",
        motion="falls",
        position=(0.0, 2.0, 0.0),
        mass=0.6,
        restitution=0.7,
        friction=0.8,
    )
    fields.update(kw)
    return SceneObject(**fields)


def crate(**kw) -> SceneObject:
    fields = dict(
        id="crate-1",
        label="crate",
        shape="box",
        color=(0.2, 0.1, 0.05),
        size=0.3,
        material="wood",
        motion="static",
        position=(1.5, 0.3, 0.0),
        mass=5.0,
        restitution=0.4,
        friction=0.5,
    )
    fields.update(kw)
    return SceneObject(**fields)


def peaks(heights: np.ndarray) -> list[float]:
    return [
        float(heights[i])
        for i in range(1, len(heights) - 1)
        if heights[i - 1] < heights[i] >= heights[i + 1]
    ]


def test_a_dropped_ball_bounces_lower_each_time_and_comes_to_rest():
    traj = simulate([ball()], duration_s=6.0, fps=FPS, setting="studio")
    y = traj.positions[:, 0, 1]
    tops = peaks(y)
    assert len(tops) >= 3
    assert all(a > b for a, b in itertools.pairwise(tops))
    # Each rebound keeps about e^2 of the height (e = 0.7 on the studio floor).
    assert tops[0] - 0.25 == pytest.approx((2.0 - 0.25) * 0.49, rel=0.1)
    hits = [e for e in traj.events if e["b"] == "ground"]
    speeds = [e["speed"] for e in hits]
    assert speeds == sorted(speeds, reverse=True)
    assert speeds[0] == pytest.approx(math.sqrt(2 * 9.81 * 1.75), rel=0.03)
    assert hits[0]["t"] == pytest.approx(math.sqrt(2 * 1.75 / 9.81), abs=1.5 / (FPS * 10))
    assert hits[0]["position"] == [0.0, 0.0, 0.0]
    # At rest: on the ground, not moving, not jittering.
    assert y[-24:] == pytest.approx([0.25] * 24, abs=1e-9)
    assert np.abs(traj.velocities[-24:]).max() == 0.0


def test_gravity_follows_the_setting():
    drop = ball(restitution=0.0, position=(0.0, 1.25, 0.0))
    earth = simulate([drop], duration_s=1.0, fps=FPS, setting="studio")
    moon = simulate([drop], duration_s=1.0, fps=FPS, setting="space")
    assert GROUNDS["space"].gravity < 2.0
    assert earth.events[0]["t"] == pytest.approx(math.sqrt(2 * 1.0 / 9.81), abs=0.01)
    assert moon.positions[-1, 0, 1] > 0.25  # still falling after a second on the moon


def test_a_ball_thrown_up_follows_a_parabola():
    thrown = ball(motion="thrown", position=(0.0, 1.0, 0.0), velocity=(1.0, 4.0, 0.0))
    traj = simulate([thrown], duration_s=1.0, fps=FPS)
    apex = traj.positions[:, 0, 1].max()
    assert apex == pytest.approx(1.0 + 4.0**2 / (2 * 9.81), abs=0.01)
    # Horizontally nothing slows it while it flies.
    assert traj.positions[12, 0, 0] == pytest.approx(0.5, abs=1e-6)


def test_a_sliding_box_stops_under_friction_and_a_rolling_ball_rolls_without_slipping():
    box = crate(motion="slides", position=(0.0, 0.3, 0.0), velocity=(3.0, 0.0, 0.0))
    roller = ball(motion="rolls", position=(0.0, 0.25, 2.0), velocity=(2.0, 0.0, 0.0))
    traj = simulate([box, roller], duration_s=3.0, fps=FPS, setting="studio")
    mu = math.sqrt(0.5 * GROUNDS["studio"].friction)
    assert traj.positions[-1, 0, 0] == pytest.approx(3.0**2 / (2 * mu * 9.81), rel=0.05)
    assert np.abs(traj.velocities[-1, 0]).max() == 0.0
    # Rolling: contact point at rest, so speed equals spin times radius; it slows only slowly.
    k = 24
    spin_speed = traj.velocities[k, 1, 0]
    turned = traj.rotations[k + 1, 1] @ traj.rotations[k, 1].T
    angle = math.acos(max(-1.0, min(1.0, (np.trace(turned) - 1) / 2)))
    assert angle * FPS * 0.25 == pytest.approx(spin_speed, rel=0.05)
    assert 1.5 < traj.velocities[-1, 1, 0] < 2.0


def test_a_ball_rolling_into_a_crate_is_recorded_and_pushes_it():
    roller = ball(motion="rolls", position=(0.0, 0.25, 0.0), velocity=(4.0, 0.0, 0.0), mass=5.0)
    box = crate(position=(1.5, 0.3, 0.0), mass=5.0)
    traj = simulate([roller, box], duration_s=1.5, fps=FPS, setting="studio")
    hits = [e for e in traj.events if {e["a"], e["b"]} == {"ball-1", "crate-1"}]
    assert len(hits) >= 1
    first = hits[0]
    # Contact when the gap (1.5 - 0.25 - 0.3 = 0.95 m) is closed at about 4 m/s.
    assert first["t"] == pytest.approx(0.95 / 4.0, abs=0.03)
    assert first["speed"] == pytest.approx(4.0, rel=0.05)
    assert first["position"][0] == pytest.approx(1.2, abs=0.06)
    assert first["type"] == "collision"
    assert traj.positions[-1, 1, 0] > 1.6  # the crate moved
    assert traj.positions[-1, 0, 0] < traj.positions[-1, 1, 0]  # and nothing passed through


def test_two_balls_colliding_head_on_bounce_apart():
    a = ball(
        id="a",
        motion="rolls",
        position=(-1.0, 0.25, 0.0),
        velocity=(2.0, 0.0, 0.0),
        restitution=0.9,
    )
    b = ball(
        id="b",
        motion="rolls",
        position=(1.0, 0.25, 0.0),
        velocity=(-2.0, 0.0, 0.0),
        restitution=0.9,
    )
    traj = simulate([a, b], duration_s=1.0, fps=FPS)
    [hit] = [e for e in traj.events if e["b"] != "ground"]
    assert hit["t"] == pytest.approx(1.5 / 4.0, abs=0.02)
    assert hit["position"] == pytest.approx([0.0, 0.25, 0.0], abs=0.05)
    assert traj.velocities[-1, 0, 0] < 0 < traj.velocities[-1, 1, 0]


def test_orbits_are_kinematic_circles_around_the_nearest_body():
    planet = ball(
        id="planet",
        label="planet",
        size=0.8,
        motion="static",
        position=(0.0, 0.8, 0.0),
        mass=1000.0,
    )
    rate = 2 * math.pi / 4.0
    moon = ball(
        id="moon",
        label="moon",
        size=0.2,
        motion="orbits",
        position=(2.0, 0.8, 0.0),
        velocity=(0.0, 0.0, -2.0 * rate),
    )
    traj = simulate([planet, moon], duration_s=4.0, fps=FPS)
    offsets = traj.positions[:, 1] - traj.positions[:, 0]
    radii = np.hypot(offsets[:, 0], offsets[:, 2])
    assert radii == pytest.approx(np.full(len(radii), 2.0), abs=1e-6)
    assert traj.positions[:, 1, 1] == pytest.approx(np.full(len(radii), 0.8), abs=1e-9)
    # A quarter of the way round after a second, counter-clockwise seen from above.
    assert traj.positions[24, 1] == pytest.approx([0.0, 0.8, -2.0], abs=1e-6)


def test_simulation_is_deterministic_and_cancellable():
    bodies = [ball(), crate(motion="slides", velocity=(2.0, 0.0, 0.0))]
    a = simulate(bodies, duration_s=2.0, fps=FPS)
    b = simulate(bodies, duration_s=2.0, fps=FPS)
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.rotations, b.rotations)
    assert a.events == b.events
    with pytest.raises(Cancelled):
        simulate(bodies, duration_s=2.0, fps=FPS, should_cancel=lambda: True)
