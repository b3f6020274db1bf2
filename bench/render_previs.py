"""previs render benchmark: the reference 4 s 720x1280 clip, against a naive full-frame ray caster.

Run: ``python -m bench.render_previs [--repeat N] [--baseline-frames N] [--contact-sheet PATH]``.

The clip is "a red ball bouncing on a beach at sunset", rendered by
``PreviSEngine.render`` exactly as a worker does: physics, camera, frames and the soundtrack.
Two more figures use the same prompt with a quoted line (so the soundtrack includes speech
synthesis) and with an orbiting camera, the engine's worst case (the background cannot be
cached and is shaded every frame). The full reference prompt ("someone says ...") also puts a
person in the shot, whose limbs, torso and head are traced on top of the ball.

The baseline is measured in the same run, on the same scene with the same shading code, but
done the straightforward way: every pixel of every frame casts its ray against the sky, the
ground, the sea, every object and every shadow, at full resolution, on torch's own intra-op
threads. It renders a few frames and is extrapolated to the clip's length.

The machine is shared, so each figure is the best of ``--repeat`` runs (only the minimum is
stable). One line per figure; ratios are to the clip's duration (x real time: higher is faster).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

from generation.engines.base import FPS, RenderRequest
from generation.engines.previs import PreviSEngine
from generation.engines.previs.camera import camera_path
from generation.engines.previs.look import build_look
from generation.engines.previs.physics import simulate
from generation.engines.previs.render import FrameRenderer, _occlusion, smoothstep

PROMPT = "a red ball bouncing on a beach at sunset"
FIGURE_PROMPT = PROMPT + ', someone says "what a beautiful evening"'
SECONDS, WIDTH, HEIGHT = 4, 720, 1280


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def naive_frame(r: FrameRenderer, index: int) -> np.ndarray:
    """One frame, every pixel traced against everything (no boxes, no caches, no upsampling)."""
    cam = r.cameras[index]
    xs = r._coords(r.width, 0.5, 1.0)
    ys = r._coords(r.height, 0.5, 1.0)
    d = r._rays(cam, xs, ys)
    pix = 2.0 * math.tan(math.radians(cam.fov_y) / 2.0) / r.height
    background, _ = r._shade(d, cam, index / r.fps, pix, want_water=False)
    dx, dy, dz = d
    ox, oy, oz = (float(v) for v in cam.position)
    tg = oy / (-dy).clamp(min=1e-4)
    px, pz = ox + tg * dx, oz + tg * dz
    lit = torch.ones_like(px)
    ao = torch.zeros_like(px)
    for occ in r._occluders(index):
        o, a = _occlusion(occ, px, pz, r.look.sun_dir, r.look.penumbra)
        lit = lit * (1.0 - o * r.look.shadow_strength)
        ao = ao + a
    direct = r.look.direct_fraction
    factor = 1.0 - direct * (1.0 - lit) - (1.0 - direct) * 0.85 * ao.clamp(0.0, 1.0)
    factor = 1.0 - (1.0 - factor.clamp(0.05, 1.0)) * smoothstep(0.0, -2.0 * pix, dy)
    background = background * torch.exp(torch.log(factor) / 2.2)
    color, alpha = r._shade_objects(
        d, cam, r._prims(index, cam), r._occluders(index), index / r.fps, pix
    )
    out = background * (1.0 - alpha) + color
    return (out * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).numpy()


def naive_seconds(engine: PreviSEngine, plan, frames: int) -> float:
    """Seconds per frame of the naive caster on this scene (best of two passes)."""
    count = round(plan.duration_s * FPS)
    traj = simulate(plan.objects, duration_s=count / FPS, fps=FPS, setting=plan.setting)
    cameras = camera_path(plan, traj, WIDTH, HEIGHT, FPS)
    first_shot = [c for c in cameras if c.shot == cameras[0].shot]
    forward, _, _, tan_h, _ = first_shot[len(first_shot) // 2].basis(WIDTH / HEIGHT)
    look = build_look(plan, forward, math.degrees(math.atan(tan_h)))
    r = FrameRenderer(
        objects=plan.objects, traj=traj, cameras=cameras, look=look, width=WIDTH, height=HEIGHT,
        fps=FPS, seed=7, device=torch.device("cpu"),
    )  # fmt: skip
    picks = np.linspace(0, count - 1, frames).round().astype(int)
    best = math.inf
    for _ in range(2):
        start = time.perf_counter()
        for index in picks:
            naive_frame(r, int(index))
        best = min(best, (time.perf_counter() - start) / frames)
    return best


def contact_sheet(frames: np.ndarray, path: str, count: int = 12, columns: int = 4) -> None:
    from PIL import Image

    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    h, w = frames.shape[1:3]
    tw = 240
    th = round(tw * h / w)
    rows = math.ceil(count / columns)
    sheet = Image.new("RGB", (columns * tw, rows * th))
    for n, index in enumerate(picks):
        tile = Image.fromarray(frames[index]).resize((tw, th), Image.LANCZOS)
        sheet.paste(tile, ((n % columns) * tw, (n // columns) * th))
    sheet.save(path)


def main(argv: list[str] | None = None) -> list[str]:
    """Prints one line per figure and returns them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-frames", type=int, default=4)
    parser.add_argument(
        "--contact-sheet", default=None, help="write a 12-frame PNG of the clip here"
    )
    parser.add_argument(
        "--figure-sheet", default=None, help="write a 12-frame PNG of the clip with a person"
    )
    args = parser.parse_args(argv)
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    clip = float(SECONDS)
    engine = PreviSEngine(device="cpu")
    start = time.perf_counter()
    engine.warm_up()
    load_s = time.perf_counter() - start
    plan_s, plan = best_of(args.repeat, lambda: engine.plan(PROMPT, seconds=SECONDS))
    request = RenderRequest(plan=plan, width=WIDTH, height=HEIGHT, seed=7)
    render_s, result = best_of(args.repeat, lambda: engine.render(request))
    spoken = engine.plan(PROMPT + '. "What a perfect evening."', seconds=SECONDS)
    spoken_request = RenderRequest(plan=spoken, width=WIDTH, height=HEIGHT, seed=7)
    engine.render(spoken_request)  # the first line spoken loads the voice model
    spoken_s, _ = best_of(args.repeat, lambda: engine.render(spoken_request))
    figure = engine.plan(FIGURE_PROMPT, seconds=SECONDS)
    figure_request = RenderRequest(plan=figure, width=WIDTH, height=HEIGHT, seed=7)
    figure_s, figure_result = best_of(args.repeat, lambda: engine.render(figure_request))
    orbit = engine.plan(PROMPT + ", the camera orbits", seconds=SECONDS)
    orbit_s, _ = best_of(
        args.repeat,
        lambda: engine.render(RenderRequest(plan=orbit, width=WIDTH, height=HEIGHT, seed=7)),
    )
    per_frame = naive_seconds(engine, plan, args.baseline_frames)
    naive_s = per_frame * len(result.frames)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    tag = f"best of {args.repeat}, {cpus} CPUs, torch {torch.__version__}"
    say(f"previs_model_load (cold, once per worker): {load_s:.2f} s")
    say(f"previs_plan (warm): {plan_s * 1000:.0f} ms ({tag})")
    say(
        f"previs_render 4s 720x1280 '{PROMPT}': {render_s:.2f} s = "
        f"{clip / render_s:.2f}x real time (target >= 0.5x, i.e. <= 8 s) ({tag})"
    )
    say(
        f"previs_render same clip with a spoken line (speech synthesis included): "
        f"{spoken_s:.2f} s = {clip / spoken_s:.2f}x real time ({tag})"
    )
    say(
        f"previs_render with a person '{FIGURE_PROMPT}': {figure_s:.2f} s = "
        f"{clip / figure_s:.2f}x real time ({tag})"
    )
    say(
        f"previs_render same clip, orbiting camera (no background cache): {orbit_s:.2f} s = "
        f"{clip / orbit_s:.2f}x real time ({tag})"
    )
    say(
        f"naive_full_frame_raycast same clip (extrapolated from {args.baseline_frames} frames, "
        f"intra-op threads): {naive_s:.1f} s = {clip / naive_s:.2f}x real time"
    )
    say(
        f"previs_speedup_vs_naive: {naive_s / render_s:.1f}x "
        f"(orbiting camera: {naive_s / orbit_s:.1f}x)"
    )
    if torch.cuda.is_available():
        gpu = PreviSEngine(device="cuda")
        gpu.render(request)  # first call pays CUDA context and kernel start-up
        gpu_s, _ = best_of(args.repeat, lambda: gpu.render(request))
        say(
            f"previs_render_cuda same clip on {torch.cuda.get_device_name(0)}: {gpu_s:.2f} s = "
            f"{clip / gpu_s:.2f}x real time, {render_s / gpu_s:.1f}x the CPU render"
        )
    if args.contact_sheet:
        contact_sheet(result.frames, args.contact_sheet)
        say(f"contact_sheet: {args.contact_sheet}")
    if args.figure_sheet:
        contact_sheet(figure_result.frames, args.figure_sheet)
        say(f"figure_sheet: {args.figure_sheet}")
    return lines


if __name__ == "__main__":
    main()
