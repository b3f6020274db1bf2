"""The lineage gate (settings.GENERATION_GATES): the remix rules, at a derived job's creation
and again right before its clip is stored."""

from __future__ import annotations

from generation.gates import CREATE
from generation.models import Clip, GenerationJob
from remix.services import remix_check_allowed


def lineage_gate(job: GenerationJob, phase: str) -> None:
    if job.parent_id is None:
        return
    parent = GenerationJob.objects.get(pk=job.parent_id)
    clip = Clip.objects.select_related("job", "user").filter(job_id=parent.pk).first()
    # Safety: the parent is re-read at completion, so a takedown in between stops the remix.
    remix_check_allowed(user=job.user, parent_job=parent, clip=clip)
    if phase == CREATE:
        job.annotations = {**job.annotations, "lineage": {"parents": [parent.public_id]}}
