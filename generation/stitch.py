"""Rendering a stitch: each clip it joins rendered again from that clip's own stored plan and
seed (the engine is deterministic, so a segment shows what its clip showed), then an optional
closing shot, one after the other in a single result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from django.core.files.storage import default_storage

from generation.engines.base import Engine, RenderRequest, RenderResult, plan_from_dict
from generation.models import GenerationJob
from generation.pipeline import stored_rgb


def _reference(name: str | None) -> np.ndarray | None:
    # A joined clip's plate may have been deleted with its job since; the segment renders
    # without it then.
    return stored_rgb(name) if name and default_storage.exists(name) else None


def stitch_plan(job: GenerationJob, engine: Engine, closing_prompt: str) -> dict[str, Any]:
    """The stitch's plan: its segments (plan, seed, reference of each clip joined, a stitch
    joined again contributing its own segments), and, flattened over them, the shots, objects
    and dialogue, which is what moderation reads of a plan."""
    found = GenerationJob.objects.in_bulk(job.parent_ids)
    segments: list[dict[str, Any]] = []
    for pk in job.parent_ids:
        parent = found[pk]
        plan = parent.plan or {}
        if plan.get("segments"):
            segments += plan["segments"]
        else:
            segments.append(
                {
                    "plan": plan,
                    "seed": parent.seed,
                    "reference": parent.input_reference.name or None,
                }
            )
    closing = int(job.params.get("closing_seconds") or 0)
    if closing:
        plan = engine.plan(closing_prompt, seconds=closing)
        segments.append({"plan": plan.to_dict(), "seed": job.seed, "reference": None})
    flat: dict[str, Any] = {
        "prompt": job.prompt,
        "shots": [],
        "objects": [],
        "dialogue": [],
        "segments": segments,
    }
    for segment in segments:
        for key in ("shots", "objects", "dialogue"):
            flat[key] += segment["plan"].get(key) or []
    return flat


def stitch_render(
    job: GenerationJob,
    engine: Engine,
    *,
    cameo_images: dict[str, np.ndarray],
    on_progress: Callable[[float], None],
    should_cancel: Callable[[], bool],
) -> RenderResult:
    segments = job.plan["segments"]
    plans = [plan_from_dict(s["plan"]) for s in segments]
    weights = [max(plan.duration_s, 1e-3) for plan in plans]
    total, done = sum(weights), 0.0
    parts: list[RenderResult] = []
    for segment, plan, weight in zip(segments, plans, weights, strict=True):
        request = RenderRequest(
            plan=plan,
            width=job.width,
            height=job.height,
            seed=segment["seed"],
            reference_image=_reference(segment.get("reference")),
            cameo_images=cameo_images,
        )
        start = done

        def progress(fraction: float, start=start, weight=weight) -> None:
            on_progress((start + fraction * weight) / total)

        parts.append(engine.render(request, on_progress=progress, should_cancel=should_cancel))
        done += weight
    return join(parts)


def join(parts: list[RenderResult]) -> RenderResult:
    """One result from several, in order: frames and audio end to end, camera shots numbered
    on, event times moved by the time before them."""
    camera: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    offset_s, shots = 0.0, 0
    for part in parts:
        camera += [{**c, "shot": c.get("shot", 0) + shots} for c in part.camera]
        events += [{**e, "t": e.get("t", 0) + offset_s} for e in part.events]
        shots += 1 + max((c.get("shot", 0) for c in part.camera), default=0)
        offset_s += part.frames.shape[0] / part.fps
    first = parts[0]
    return RenderResult(
        frames=np.concatenate([p.frames for p in parts]),
        audio=np.concatenate([p.audio for p in parts], axis=1),
        sample_rate=first.sample_rate,
        fps=first.fps,
        camera=camera,
        events=events,
    )
