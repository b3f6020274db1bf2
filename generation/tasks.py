"""Celery tasks: interfaces only. They take ids and call generation.work / runner."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from core.tasks import enqueue_on_commit
from generation.models import GenerationJob, JobStage
from generation.runner import signal_cancel, sweep_orphans
from generation.selectors import jobs_stalled

logger = logging.getLogger("montage.generation")

__all__ = ["enqueue_postprocess", "enqueue_render", "signal_cancel"]


# Both job stages: acknowledged only when done and re-queued when their worker dies (the lease
# makes a second delivery harmless); retried without limit only by the lease back-off.
JOB_TASK = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": None,
    "ignore_result": True,
}


def broker_priority(priority: int) -> int:
    """Job priority is 0-9, higher is more urgent. Redis orders priority 0 first; AMQP serves
    the highest number first."""
    if settings.CELERY_BROKER_URL.startswith(("amqp", "pyamqp")):
        return priority
    return 9 - priority


def enqueue_render(job: GenerationJob) -> None:
    enqueue_on_commit(
        render, args=(str(job.pk),), queue="gpu", priority=broker_priority(job.priority)
    )


def enqueue_postprocess(job: GenerationJob) -> None:
    enqueue_on_commit(
        postprocess, args=(str(job.pk),), queue="cpu", priority=broker_priority(job.priority)
    )


@shared_task(name="generation.render", **JOB_TASK)
def render(self, job_id: str) -> None:
    from generation.work import render_job

    retry_in = render_job(job_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name="generation.postprocess", **JOB_TASK)
def postprocess(self, job_id: str) -> None:
    from generation.work import postprocess_job

    retry_in = postprocess_job(job_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)


@shared_task(name="generation.reap", time_limit=120, soft_time_limit=110, ignore_result=True)
def reap() -> int:
    """Backstop for lost messages and dead workers: re-sends the task of every unfinished job
    whose lease expired or that has waited too long without one. A duplicate is harmless:
    the lease makes the second delivery a no-op."""
    sent = 0
    requeue_after = settings.GENERATION_REQUEUE_AFTER_SECONDS
    for job in jobs_stalled(waited=dt.timedelta(seconds=requeue_after)):
        # At most one re-send per job per requeue_after, so a long queue is not flooded.
        if not cache.add(f"reap:{job.pk}", "1", timeout=requeue_after):
            continue
        task = render if job.stage in (JobStage.QUEUED, JobStage.RENDERING) else postprocess
        task.apply_async(
            args=(str(job.pk),),
            queue="gpu" if task is render else "cpu",
            priority=broker_priority(job.priority),
        )
        sent += 1
    if sent:
        logger.warning("reaper re-sent %d job task(s)", sent)
    removed = sweep_orphans()
    if removed:
        logger.warning("reaper removed %d orphaned attempt director(ies)", removed)
    return sent
