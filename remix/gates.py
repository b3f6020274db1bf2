"""The lineage gate (settings.GENERATION_GATES): the remix rules, at a derived job's creation
and again right before its clip is stored."""

from __future__ import annotations

from generation.gates import CREATE, GateRefused
from generation.models import Clip, GenerationJob, public_id
from remix.services import remix_check_allowed


def lineage_gate(job: GenerationJob, phase: str) -> None:
    parent_ids = job.parent_ids
    if not parent_ids:
        return
    parents = GenerationJob.objects.in_bulk(parent_ids)
    clips = {
        clip.job_id: clip
        for clip in Clip.objects.select_related("user").filter(job_id__in=parent_ids)
    }
    # Safety: the parents are re-read at completion, so a takedown in between stops the remix;
    # a stitch is checked against every clip it joins.
    for pk in parent_ids:
        if pk not in parents:
            raise GateRefused(
                "parent_unavailable",
                f"Video {public_id(pk)} no longer exists and cannot be remixed.",
                status=409,
            )
        clip = clips.get(pk)
        if clip is not None:
            clip.job = parents[pk]  # already read above: no second fetch of the job
        remix_check_allowed(user=job.user, parent_job=parents[pk], clip=clip)
    if phase == CREATE:
        job.annotations = {
            **job.annotations,
            "lineage": {"parents": [parents[pk].public_id for pk in parent_ids]},
        }
