"""The previs engine end to end: sizes, determinism, pixels, cancel, plates and cameos."""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np
import pytest

from generation.engines.base import (
    API_SIZES,
    FPS,
    NATIVE_SIZES,
    SAMPLE_RATE,
    Cancelled,
    RenderRequest,
    ScenePlan,
    Shot,
)
from generation.engines.previs import PreviSEngine
from generation.engines.previs.camera import CameraFrame
from generation.engines.previs.planner import warm_up


@pytest.fixture(scope="module")
def engine() -> PreviSEngine:
    warm_up()
    return PreviSEngine(device="cpu")


def render(engine, prompt, *, size=(144, 256), seconds=1.0, seed=3, **kw):
    plan = kw.pop("plan", None) or engine.plan(
        prompt, seconds=seconds, storyboard=kw.pop("storyboard", None)
    )
    w, h = size
    return plan, engine.render(RenderRequest(plan=plan, width=w, height=h, seed=seed, **kw))


def camera_at(result, index: int) -> CameraFrame:
    meta = result.camera[index]
    return CameraFrame(
        np.array(meta["position"]),
        np.array(meta["target"]),
        meta["fov_y"],
        meta["shot"],
        meta["move"],
    )


def red_mask(frame: np.ndarray) -> np.ndarray:
    rgb = frame.astype(np.int32)
    return (
        (rgb[..., 0] > 60) & (rgb[..., 0] > 2.5 * rgb[..., 1]) & (rgb[..., 0] > 2.5 * rgb[..., 2])
    )


def digest(frames: np.ndarray) -> str:
    return hashlib.sha256(frames.tobytes()).hexdigest()


def test_every_api_and_native_size_renders_at_its_exact_shape(engine):
    plan = ScenePlan(
        prompt="",
        setting="beach",
        time_of_day="sunset",
        lighting="soft",
        mood="calm",
        objects=engine.plan("a red ball", seconds=1).objects,
        shots=[Shot(duration_s=1 / FPS, camera="static")],
    )
    for size in API_SIZES + NATIVE_SIZES:
        w, h = (int(v) for v in size.split("x"))
        result = engine.render(RenderRequest(plan=plan, width=w, height=h, seed=1))
        assert result.frames.shape == (1, h, w, 3), size
        assert result.frames.dtype == np.uint8
        assert result.audio.shape == (2, SAMPLE_RATE // FPS)
        assert len(result.camera) == 1


def test_same_request_and_seed_give_byte_identical_frames(engine):
    prompt = "a red ball bouncing on a beach at sunset, the camera orbits"
    _, first = render(engine, prompt, size=(90, 160), seconds=0.5, seed=11)
    _, again = render(
        PreviSEngine(device="cpu", threads=1), prompt, size=(90, 160), seconds=0.5, seed=11
    )
    _, other = render(engine, prompt, size=(90, 160), seconds=0.5, seed=12)
    assert digest(first.frames) == digest(again.frames)
    assert np.array_equal(first.audio, again.audio)
    assert first.camera == again.camera and first.events == again.events
    # The seed varies textures (sand, sea, clouds), never the action.
    assert digest(first.frames) != digest(other.frames)
    assert first.events == other.events


def test_the_red_ball_is_red_on_screen_exactly_where_the_physics_puts_it(engine):
    plan, result = render(
        engine, "a red ball bouncing on a beach at sunset", size=(180, 320), seconds=2.0
    )
    [ball] = plan.objects
    from generation.engines.previs.physics import simulate

    traj = simulate(plan.objects, duration_s=2.0, fps=FPS, setting=plan.setting)
    for index in (0, 12, 30, 47):
        cam = camera_at(result, index)
        ((px, py),) = cam.project(traj.positions[index, :1], 180, 320)[0]
        frame = result.frames[index]
        assert 0 <= px < 180 and 0 <= py < 320, "the ball is framed"
        red = red_mask(frame)
        ys, xs = np.nonzero(red)
        assert len(xs) > 40
        assert abs(xs.mean() - px) < 3 and abs(ys.mean() - py) < 3
        # Red belongs to the ball only: nothing far from its outline is red.
        radius = np.sqrt(len(xs) / np.pi)
        assert np.hypot(xs - px, ys - py).max() < radius + 3
    assert red_mask(result.frames[0])[:40].sum() == 0 or ball.position[1] > 1.0


def test_a_sunset_sky_is_warmer_than_a_noon_sky(engine):
    _, sunset = render(engine, "an empty beach at sunset", seconds=1 / FPS)
    _, noon = render(engine, "an empty beach at noon", seconds=1 / FPS)

    def warmth(frame):
        sky = frame[: frame.shape[0] // 3].astype(np.float64)
        return (sky[..., 0] - sky[..., 2]).mean()

    assert warmth(sunset.frames[0]) > warmth(noon.frames[0]) + 40
    assert warmth(noon.frames[0]) < 0  # a blue sky at noon
    # The low sun is in the sunset frame, and it is the brightest thing there.
    top = sunset.frames[0][: sunset.frames.shape[1] // 2].astype(np.int32).sum(-1)
    assert top.max() > 3 * 235


def test_cancel_stops_the_render_within_a_second(engine):
    plan = engine.plan("a red ball bouncing on a beach at sunset, the camera orbits", seconds=8)
    flag = threading.Event()
    stamps = {}

    def progress(fraction):
        if fraction > 0.2 and not flag.is_set():
            stamps["set"] = time.monotonic()
            flag.set()

    with pytest.raises(Cancelled):
        engine.render(
            RenderRequest(plan=plan, width=360, height=640, seed=1),
            on_progress=progress,
            should_cancel=flag.is_set,
        )
    assert time.monotonic() - stamps["set"] < 1.0


def test_progress_audio_camera_and_events_line_up_with_the_frames(engine):
    seen = []
    plan = engine.plan("a red ball bouncing on a beach at sunset", seconds=2)
    result = engine.render(
        RenderRequest(plan=plan, width=72, height=128, seed=1), on_progress=seen.append
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    frames = 2 * FPS
    assert result.frames.shape[0] == frames and len(result.camera) == frames
    assert (
        result.audio.shape == (2, frames * SAMPLE_RATE // FPS) and result.audio.dtype == np.float32
    )
    assert result.sample_rate == SAMPLE_RATE and result.fps == FPS
    assert [c["frame"] for c in result.camera] == list(range(frames))
    hits = [e for e in result.events if e["type"] == "collision"]
    assert hits and all(-1.0 <= e["screen_x"] <= 1.0 for e in hits)
    assert all(e["a"] == plan.objects[0].id and e["b"] == "ground" for e in hits)


def test_a_reference_image_is_the_first_frame_and_the_plate_behind_the_action(engine):
    plate = np.zeros((300, 400, 3), dtype=np.uint8)
    plate[:, :200] = (20, 160, 40)
    plate[:, 200:] = (30, 60, 200)
    _, result = render(
        engine, "a red ball bounces", size=(160, 120), seconds=1.0, reference_image=plate
    )
    first = result.frames[0]
    assert (first[:, :70] == (20, 160, 40)).all() and (first[:, 90:] == (30, 60, 200)).all()
    # Later the ball is drawn over the plate, which still fills the rest of the frame.
    last = result.frames[-1]
    assert red_mask(last).sum() > 20
    assert (last[:5, :5] == (20, 160, 40)).all()


def test_a_cameo_is_drawn_with_its_likeness_in_every_shot(engine):
    face = np.zeros((64, 64, 3), dtype=np.uint8)
    face[...] = (10, 220, 30)
    plan, result = render(
        engine,
        "",
        size=(180, 320),
        storyboard=[
            {"prompt": "@alice stands in a studio", "seconds": 0.5, "camera": "static"},
            {"prompt": "@alice stands in a studio", "seconds": 0.5, "camera": "orbit"},
        ],
        cameo_images={"alice": face},
    )
    [alice] = plan.objects
    assert alice.cameo == "alice"
    head = np.array([[alice.position[0], 1.45 + 0.03 + 0.13, alice.position[2]]])
    for index in (0, 18):
        cam = camera_at(result, index)
        ((px, py),) = cam.project(head, 180, 320)[0]
        patch = result.frames[index, int(py) - 1 : int(py) + 2, int(px) - 1 : int(px) + 2].astype(
            int
        )
        assert (patch[..., 1] > 2 * patch[..., 0]).all() and (
            patch[..., 1] > 2 * patch[..., 2]
        ).all()
    assert result.camera[0]["shot"] == 0 and result.camera[18]["shot"] == 1


def test_a_still_camera_keeps_the_background_and_a_moving_one_does_not(engine):
    _, still = render(engine, "a red cube sits in a forest, static shot", seconds=0.5)
    assert np.array_equal(still.frames[0], still.frames[-1])
    _, moving = render(engine, "a red cube sits in a forest, the camera pans", seconds=0.5)
    assert not np.array_equal(moving.frames[0], moving.frames[-1])
    assert moving.camera[0]["position"] == moving.camera[-1]["position"]  # a pan turns in place
    assert moving.camera[0]["target"] != moving.camera[-1]["target"]
