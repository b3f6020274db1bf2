"""Reads for generation, permission-checked."""

from __future__ import annotations

from django.db.models import QuerySet

from core.errors import NotFound
from generation.models import Clip, GenerationJob, parse_public_id


def jobs_for_owner(*, user) -> QuerySet:
    return GenerationJob.objects.filter(user=user, deleted_at__isnull=True).select_related(
        "parent", "clip"
    )


def job_get_for_owner(*, job_id: str, user) -> GenerationJob:
    """The caller's own job. Someone else's id answers exactly like a missing one."""
    pk = parse_public_id(job_id)
    job = jobs_for_owner(user=user).filter(pk=pk).first() if pk else None
    if job is None:
        raise NotFound(
            f"No video found with id {job_id!r}.", code="video_not_found", param="video_id"
        )
    return job


def clip_viewers_ok(*, clip: Clip, user) -> bool:
    """Who may fetch a draft's media: its creator (the cameo app widens this to the owners of
    cameos in it, through the same function)."""
    return user is not None and user.is_authenticated and clip.user_id == user.pk
