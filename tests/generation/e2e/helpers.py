"""Shared steps of the end-to-end generation tests."""

from __future__ import annotations

from generation.models import GenerationJob
from tests.fixtures import wait_for


def job_of(body: dict, index: int = 0) -> GenerationJob:
    """The job row behind a native API answer (``{"data": [generation, ...]}``)."""
    return GenerationJob.objects.get(pk=body["data"][index]["id"].removeprefix("video_"))


def wait_finished(job: GenerationJob, timeout: float = 180) -> GenerationJob:
    """Polls the real row until a worker has ended the job; returns it refreshed."""

    def done():
        job.refresh_from_db()
        return job.is_terminal

    wait_for(done, timeout, f"job {job.public_id} to finish", interval=0.2)
    return job
