"""What a case or report is about: clips and people are known here; apps above (cameo, feed)
register their own subject types through :func:`register_subject_type`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError

from accounts.models import User
from core.errors import InvalidRequest, NotFound
from generation.models import Clip, ClipAudience, GenerationJob, parse_public_id


@dataclass
class Subject:
    type: str
    id: str  # the opaque id stored on cases and reports
    owner: User | None
    reach: int
    obj: object = None
    label: str = ""
    # What staff see of a subject whose app moderation does not import (a comment's text, its
    # post, whether it is removed), filled in by the app that registered the type.
    details: dict = field(default_factory=dict)


_resolvers: dict[str, Callable] = {}


def register_subject_type(subject_type: str, fn: Callable) -> None:
    """``fn(subject_id=, viewer=)`` returns a :class:`Subject` or raises NotFound (for a viewer
    who may not see it, too)."""
    _resolvers[subject_type] = fn


def reach_band(reach: int) -> int:
    return int(math.log10(reach + 1)) if reach > 0 else 0


def clip_reach(clip: Clip) -> int:
    """How many people a clip can reach: its remixes, plus the creator's followers once it is
    published beyond its creator."""
    from accounts.models import Follow

    remixes = GenerationJob.objects.filter(parent_id=clip.job_id).count()
    followers = 0
    if clip.published_at is not None and clip.audience != ClipAudience.ONLY_ME:
        followers = Follow.objects.filter(followee_id=clip.user_id).count()
    return 1 + remixes + followers


def clip_by_public_id(subject_id: str) -> Clip | None:
    pk = parse_public_id(subject_id)
    if pk is None:
        return None
    return Clip.objects.select_related("job", "user").filter(job_id=pk).first()


def resolve(subject_type: str, subject_id: str, *, viewer=None) -> Subject:
    """The subject, as ``viewer`` may see it (``None``: the system, which sees everything)."""
    from generation.selectors import clip_visible_to

    if subject_type == "clip":
        clip = clip_by_public_id(subject_id)
        if clip is None or (viewer is not None and not clip_visible_to(clip=clip, user=viewer)):
            raise NotFound("No such clip.", code="subject_not_found", param="subject_id")
        return Subject("clip", clip.job.public_id, clip.user, clip_reach(clip), clip)
    if subject_type == "user":
        handle = User.normalize_handle(subject_id)
        user = User.objects.filter(handle=handle).first()
        if user is None:
            try:
                user = User.objects.filter(pk=subject_id).first()
            except (ValueError, TypeError, ValidationError):
                user = None
        if user is None or (viewer is not None and not user.is_active):
            raise NotFound("No such user.", code="subject_not_found", param="subject_id")
        from accounts.models import Follow

        reach = 1 + Follow.objects.filter(followee=user).count()
        return Subject("user", str(user.pk), user, reach, user, f"@{user.handle}")
    if subject_type in _resolvers:
        return _resolvers[subject_type](subject_id=subject_id, viewer=viewer)
    raise InvalidRequest(
        f"{subject_type!r} cannot be reported on this server.",
        code="subject_unsupported",
        param="subject_type",
    )
