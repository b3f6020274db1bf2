"""``previs``: the built-in engine. Prompt -> scene plan -> physics -> camera -> frames + audio.

The modules: :mod:`.planner` (understanding),
:mod:`.physics` (rigid bodies), :mod:`.camera` (framing and moves), :mod:`.look` (setting and
light), :mod:`.render` (frames), and ``audio`` (the soundtrack, when installed).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from generation.engines.base import (
    FPS,
    SAMPLE_RATE,
    CancelCheck,
    Cancelled,
    ProgressCallback,
    RenderRequest,
    RenderResult,
    ScenePlan,
)

from .camera import camera_path
from .look import build_look
from .physics import simulate
from .planner import plan_scene
from .render import FrameRenderer

__all__ = ["PreviSEngine"]

VERSION = "1.0.0"
# Share of progress reported for physics and set-up; frames take the rest.
SETUP_SHARE = 0.05


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def render_audio_or_silence(
    plan: ScenePlan, events: list[dict], duration_s: float, sample_rate: int, seed: int
):
    """The soundtrack from ``audio.render_audio`` when that module is installed, else silence.

    Returns (float32 (2, N) audio, extra events such as speech).
    """
    if importlib.util.find_spec(f"{__name__}.audio") is None:
        return np.zeros((2, round(duration_s * sample_rate)), dtype=np.float32), []
    audio = importlib.import_module(f"{__name__}.audio")
    out = audio.render_audio(plan, events, duration_s, sample_rate, seed)
    if isinstance(out, tuple):
        return np.asarray(out[0], dtype=np.float32), list(out[1])
    return np.asarray(out, dtype=np.float32), []


class PreviSEngine:
    """Physics-and-camera previsualisation: deterministic for (plan, seed, size, version).

    One instance per worker process; ``render`` may be called many times. On CPU, frames are
    rendered by ``threads`` worker threads (default: the CPUs this process may use), each
    running torch single-threaded; on CUDA, one thread feeds the GPU.
    """

    name = "previs"
    version = VERSION

    def __init__(self, *, device: str | None = None, threads: int | None = None) -> None:
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.threads = threads or _cpu_count()

    def warm_up(self) -> None:
        """Load the text model (and embed the vocabulary) and the speech voice now rather than
        on the first job."""
        from .audio_voice import VOICE
        from .planner import warm_up

        warm_up()
        VOICE.load()

    def plan(
        self, prompt: str, *, seconds: float, storyboard: list[dict] | None = None
    ) -> ScenePlan:
        return plan_scene(prompt, seconds=seconds, storyboard=storyboard)

    def render(
        self,
        request: RenderRequest,
        *,
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> RenderResult:
        plan = request.plan
        fps = int(request.fps or FPS)
        width, height = int(request.width), int(request.height)
        if width <= 0 or height <= 0:
            raise ValueError(f"bad frame size {width}x{height}")
        frames = max(1, round(plan.duration_s * fps))
        duration = frames / fps
        cancelled = should_cancel or (lambda: False)
        progress = on_progress or (lambda fraction: None)
        progress(0.0)

        traj = simulate(
            plan.objects,
            duration_s=duration,
            fps=fps,
            setting=plan.setting,
            should_cancel=cancelled,
        )
        cameras = camera_path(plan, traj, width, height, fps)
        # The key light is placed for the middle of the first shot, so a sunset stays in view
        # through an orbit or pan rather than only at its first frame.
        first_shot = [c for c in cameras if c.shot == cameras[0].shot]
        forward, _, _, tan_h, _ = first_shot[len(first_shot) // 2].basis(width / height)
        half_hfov = float(np.degrees(np.arctan(tan_h)))
        look = build_look(plan, forward, half_hfov)
        renderer = FrameRenderer(
            objects=plan.objects,
            traj=traj,
            cameras=cameras,
            look=look,
            width=width,
            height=height,
            fps=fps,
            seed=int(request.seed),
            device=self.device,
            plate=request.reference_image,
            faces=request.cameo_images,
        )
        renderer.prepare(cancelled)
        progress(SETUP_SHARE)
        video = np.empty((frames, height, width, 3), dtype=np.uint8)
        self._render_frames(renderer, video, progress, cancelled)

        events = [dict(e) for e in traj.events]
        for e in events:
            cam = cameras[min(frames - 1, round(e["t"] * fps))]
            px, py = cam.project(np.array([e["position"]]), width, height)[0][0]
            e["screen_x"] = round(float(np.clip(px / width * 2.0 - 1.0, -1.0, 1.0)), 4)
            e["screen_y"] = round(float(np.clip(1.0 - py / height * 2.0, -1.0, 1.0)), 4)
        if cancelled():
            raise Cancelled("cancelled before audio")
        audio, extra = render_audio_or_silence(
            plan, events, duration, SAMPLE_RATE, int(request.seed)
        )
        events = sorted(events + extra, key=lambda e: (float(e["t"]), str(e.get("type"))))
        progress(1.0)
        return RenderResult(
            frames=video,
            audio=audio,
            sample_rate=SAMPLE_RATE,
            fps=fps,
            camera=[c.to_dict(i, fps) for i, c in enumerate(cameras)],
            events=events,
        )

    def _render_frames(
        self, renderer: FrameRenderer, video: np.ndarray, progress, cancelled
    ) -> None:
        frames = len(video)
        workers = 1 if self.device.type != "cpu" else max(1, min(self.threads, frames))
        previous = torch.get_num_threads()
        if self.device.type == "cpu":
            # See render.py: frame-level threads beat intra-op threads for these tensor sizes.
            torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="previs") as pool:
                pending: dict[int, Any] = {}
                nxt = 0
                done = 0
                window = 2 * workers
                while done < frames:
                    while nxt < frames and len(pending) < window:
                        pending[nxt] = pool.submit(renderer.render_into, nxt, video[nxt])
                        nxt += 1
                    first = min(pending)
                    pending.pop(first).result()
                    done += 1
                    progress(SETUP_SHARE + (1.0 - SETUP_SHARE) * 0.95 * done / frames)
                    if cancelled():
                        for future in pending.values():
                            future.cancel()
                        for future in pending.values():
                            if not future.cancelled():
                                future.result()
                        raise Cancelled(f"cancelled at frame {done} of {frames}")
        finally:
            torch.set_num_threads(previous)
