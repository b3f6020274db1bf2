"""The two stages of a job: render (GPU worker) and post-process (CPU worker)."""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from core import metrics
from generation import pipeline
from generation.engines.base import RenderRequest, merge_edit, plan_from_dict
from generation.engines.registry import get_engine
from generation.faults import checkpoint
from generation.gates import COMPLETE, GateRefused, run_gates
from generation.models import Clip, GenerationJob, JobAttempt, JobKind, JobStage, JobStatus
from generation.runner import (
    POST_SPAN,
    RENDER_SPAN,
    Heartbeat,
    LeaseLost,
    ProgressReporter,
    delete_attempt_files,
    job_finish,
    load_intermediate,
    run_stage,
    save_intermediate,
    worker_id,
)
from generation.services import clip_fingerprints_store, job_event_record, job_publish
from generation.stitch import stitch_plan, stitch_render

logger = logging.getLogger("montage.generation")


def planning_text(job: GenerationJob) -> tuple[str, list | None]:
    """The prompt (and storyboard) the engine plans from: the job's own, each followed by the
    standing instructions of the cameos it shows (``"@ava wears red"``), which the planner
    applies to that person. The owner's words go to the engine; the job keeps the prompt
    its creator wrote."""
    notes = {
        ref["engine_key"]: f"@{ref['engine_key']} {ref['instructions'].strip().rstrip('.')}"
        for ref in job.annotations.get("cameos", [])
        if ref.get("engine_key") and (ref.get("instructions") or "").strip()
    }

    def with_notes(text: str) -> str:
        named = [note for key, note in notes.items() if f"@{key}" in text.lower()]
        return ". ".join([text.rstrip(". "), *named]) if named else text

    storyboard = job.params.get("storyboard")
    if storyboard:
        storyboard = [{**shot, "prompt": with_notes(shot.get("prompt", ""))} for shot in storyboard]
    return with_notes(job.prompt), storyboard


def _render(job: GenerationJob, heartbeat: Heartbeat, attempt: JobAttempt) -> None:
    from generation.tasks import enqueue_postprocess

    engine = get_engine(job.engine)
    if job.kind == JobKind.STITCH:
        plan = None
        if not job.plan:
            job.plan = stitch_plan(job, engine, planning_text(job)[0])
            job.engine_version = engine.version
            GenerationJob.objects.filter(pk=job.pk).update(
                plan=job.plan, engine_version=engine.version
            )
    elif job.plan:
        plan = plan_from_dict(job.plan)
    else:
        if job.kind == JobKind.EDIT and job.parent is not None and job.parent.plan:
            # An edit changes what its instruction names in the parent's scene, nothing else.
            instruction = engine.plan(job.prompt, seconds=job.seconds)
            plan = merge_edit(plan_from_dict(job.parent.plan), instruction)
        else:
            prompt, storyboard = planning_text(job)
            plan = engine.plan(prompt, seconds=job.seconds, storyboard=storyboard)
        job.plan = plan.to_dict()
        job.engine_version = engine.version
        GenerationJob.objects.filter(pk=job.pk).update(plan=job.plan, engine_version=engine.version)
    cameo_images = {
        ref: pipeline.stored_rgb(name)
        for ref, name in job.annotations.get("cameo_images", {}).items()
    }
    report = ProgressReporter(job, RENDER_SPAN)

    def on_progress(fraction: float) -> None:
        report(fraction)
        if fraction >= 0.5:
            checkpoint("render")

    if plan is None:
        result = stitch_render(
            job,
            engine,
            cameo_images=cameo_images,
            on_progress=on_progress,
            should_cancel=heartbeat.should_stop,
        )
    else:
        request = RenderRequest(
            plan=plan,
            width=job.width,
            height=job.height,
            seed=job.seed,
            reference_image=pipeline.stored_rgb(job.input_reference.name)
            if job.input_reference
            else None,
            cameo_images=cameo_images,
        )
        result = engine.render(
            request, on_progress=on_progress, should_cancel=heartbeat.should_stop
        )
    name = save_intermediate(attempt, result)
    with transaction.atomic():
        locked = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if locked.lease_owner != heartbeat.worker or locked.is_terminal:
            transaction.on_commit(lambda: default_storage.delete(name))
            raise LeaseLost
        locked.stage = JobStage.RENDERED
        locked.intermediate = name
        locked.lease_owner = ""
        locked.lease_expires_at = None
        locked.progress = max(locked.progress, RENDER_SPAN[1])
        locked.save(
            update_fields=["stage", "intermediate", "lease_owner", "lease_expires_at", "progress"]
        )
        JobAttempt.objects.filter(pk=attempt.pk).update(
            outcome=JobAttempt.Outcome.OK, ended_at=timezone.now()
        )
        job_event_record(
            locked, f"worker:{heartbeat.worker}", action="rendered", attempt=attempt.pk
        )
        enqueue_postprocess(locked)


def _postprocess(job: GenerationJob, heartbeat: Heartbeat, attempt: JobAttempt) -> None:
    result = load_intermediate(job.intermediate)
    produced = pipeline.produce(
        job=job,
        result=result,
        prefix=f"clips/{job.id.hex}/{attempt.pk}",
        scratch=pipeline.scratch_dir(job.id.hex, attempt.pk),
        on_progress=ProgressReporter(job, POST_SPAN),
        should_stop=heartbeat.should_stop,
    )
    intermediate = job.intermediate
    with transaction.atomic():
        locked = GenerationJob.objects.select_for_update().get(pk=job.pk)
        # Safety: only the lease holder may complete the job; one job, one clip.
        if locked.lease_owner != heartbeat.worker or locked.is_terminal:
            transaction.on_commit(lambda: delete_attempt_files(job.id.hex, attempt.pk))
            raise LeaseLost
        # What the completion gates may inspect: the stored, signed video and its fingerprints.
        locked.output = produced
        try:
            # Safety: consent and screening are checked again right before the clip exists.
            run_gates(locked, COMPLETE)
        except GateRefused as refusal:
            JobAttempt.objects.filter(pk=attempt.pk).update(
                outcome=JobAttempt.Outcome.OK, ended_at=timezone.now()
            )
            # Safety: a refused clip's files are deleted; it never becomes a clip.
            transaction.on_commit(lambda: delete_attempt_files(job.id.hex, attempt.pk))
            job_finish(
                locked,
                heartbeat.worker,
                status=JobStatus.BLOCKED,
                action="blocked",
                code=refusal.code,
                message=refusal.reason,
            )
            return
        clip = Clip.objects.create(
            job=locked,
            user_id=locked.user_id,
            video=produced.video,
            thumbnail=produced.thumbnail,
            spritesheet=produced.spritesheet,
            metadata=produced.metadata,
            duration_s=produced.duration_s,
            width=locked.width,
            height=locked.height,
            bytes=produced.bytes,
            sha256=produced.sha256,
            manifest=produced.manifest,
            watermark=produced.watermark,
        )
        clip_fingerprints_store(clip=clip, hashes=produced.fingerprints)
        locked.status = JobStatus.COMPLETED
        locked.stage = JobStage.DONE
        locked.progress = 100
        locked.completed_at = timezone.now()
        locked.lease_owner = ""
        locked.lease_expires_at = None
        locked.intermediate = ""
        locked.save()
        metrics.job_finished(locked)
        JobAttempt.objects.filter(pk=attempt.pk).update(
            outcome=JobAttempt.Outcome.OK, ended_at=timezone.now()
        )
        job_event_record(
            locked, f"worker:{heartbeat.worker}", action="completed", attempt=attempt.pk
        )
        job_publish(locked, "job.completed")
        transaction.on_commit(lambda: default_storage.delete(intermediate))


def render_job(job_id) -> float | None:
    """Returns seconds to wait before trying again when another live worker owns the job."""
    return run_stage(
        job_id, stage=JobStage.RENDERING, accept={JobStage.QUEUED}, work=_render
    ).retry_in


def postprocess_job(job_id) -> float | None:
    return run_stage(
        job_id, stage=JobStage.POSTPROCESSING, accept={JobStage.RENDERED}, work=_postprocess
    ).retry_in


__all__ = ["postprocess_job", "render_job", "worker_id"]
