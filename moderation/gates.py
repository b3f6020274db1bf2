"""The screening gate (settings.GENERATION_GATES): input screening when a job is created,
output screening before its clip exists."""

from __future__ import annotations

from generation.gates import COMPLETE, CREATE
from moderation.screening import screen_job_complete, screen_job_create


def screening_gate(job, phase: str) -> None:
    if phase == CREATE:
        screen_job_create(job)
    elif phase == COMPLETE:
        screen_job_complete(job)
