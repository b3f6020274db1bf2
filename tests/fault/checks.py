"""What every fault test asserts about the jobs it submitted, and the result row it reports."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

from generation.models import Clip, GenerationJob, JobAttempt, JobEvent, JobStatus

JOB_PROMPT = "a yellow ball rolls across a wooden floor and bumps a crate"


def submit(client: httpx.Client, *, marker: str, seconds: int = 1) -> httpx.Response:
    """One small previs job through the native API (the smallest size)."""
    return client.post(
        "/api/v1/generations",
        json={"prompt": f"{JOB_PROMPT} {marker}", "seconds": seconds, "size": "512x512"},
    )


def job_id_of(response: httpx.Response):
    return response.json()["data"][0]["id"].removeprefix("video_")


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) >= {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    if status >= 500:
        assert error["type"] == "server_error", error
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def clip_job_unique() -> bool:
    """Whether the database itself refuses a second clip for one job."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Clip._meta.db_table)
    return any(c["unique"] and c["columns"] == ["job_id"] for c in constraints.values())


def _files(root: Path) -> list[str]:
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@dataclass
class Outcome:
    accepted: int
    completed: int = 0
    duplicates: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)


def exactly_once(job_ids) -> Outcome:
    """Counts, for the accepted jobs, how many completed with exactly one clip and one set of
    files; names every job that did not (lost: not completed; duplicates: extra clips, extra
    completions or extra stored attempts) and every leftover (intermediates, scratch dirs,
    attempts still marked running)."""
    job_ids = list(job_ids)
    outcome = Outcome(accepted=len(job_ids))
    media = Path(settings.MEDIA_ROOT)
    scratch = Path(tempfile.gettempdir()) / "montage-post"
    jobs = {job.pk: job for job in GenerationJob.objects.filter(pk__in=job_ids)}
    for job_id in job_ids:
        job = jobs.get(job_id)
        if job is None:
            outcome.lost += 1
            outcome.problems.append(f"{job_id}: accepted but has no row")
            continue
        if job.status != JobStatus.COMPLETED:
            outcome.lost += 1
            outcome.problems.append(
                f"{job.public_id}: {job.status}/{job.stage} {job.error_code} {job.error_message}"
            )
            continue
        clips = Clip.objects.filter(job_id=job.pk).count()
        completions = JobEvent.objects.filter(job_id=job.pk, detail__action="completed").count()
        stored = _files(media / "clips" / job.id.hex)
        attempt_dirs = {name.split("/")[0] for name in stored}
        if clips != 1 or completions != 1 or len(attempt_dirs) != 1 or len(stored) != 4:
            outcome.duplicates += 1
            outcome.problems.append(
                f"{job.public_id}: {clips} clips, {completions} completions, files {stored}"
            )
            continue
        clip = Clip.objects.get(job_id=job.pk)
        if not clip.video.name.startswith(f"clips/{job.id.hex}/{next(iter(attempt_dirs))}/"):
            outcome.problems.append(f"{job.public_id}: clip row points at {clip.video.name}")
        leftovers = _files(media / "intermediate" / job.id.hex)
        leftovers += [str(p) for p in scratch.glob(f"{job.id.hex}-*")] if scratch.exists() else []
        if leftovers:
            outcome.problems.append(f"{job.public_id}: orphaned intermediates {leftovers}")
        running = JobAttempt.objects.filter(job_id=job.pk, outcome=JobAttempt.Outcome.RUNNING)
        if running.exists():
            outcome.problems.append(f"{job.public_id}: attempts still marked running")
        outcome.completed += 1
    if not clip_job_unique():
        outcome.problems.append("generation_clip.job_id has no unique constraint")
    return outcome


def report(row: dict) -> None:
    """Prints the result row (visible with -s) and appends it to $FAULT_REPORT as JSON."""
    print("\nFAULT RESULT " + " | ".join(f"{key}={value}" for key, value in row.items()))
    path = os.environ.get("FAULT_REPORT")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(row) + "\n")
