"""Signal receivers: the only way apps below moderation can tell it something."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.utils import timezone

from generation.models import Clip
from moderation import policy
from moderation.services import case_open


def clip_created(sender, instance: Clip, created: bool, **kwargs) -> None:
    """A clip whose output screening said "hold" is held from the moment it exists (inside the
    transaction that creates it), and a case opens in the screening queue."""
    if not created:
        return
    hold = (instance.job.annotations or {}).get("moderation_hold")
    if not hold:
        return
    # Safety: a held clip is shown to nobody but its creator and staff until a decision.
    now = timezone.now()
    Clip.objects.filter(pk=instance.pk).update(held_at=now, hold_reason=hold["reason"][:200])
    instance.held_at, instance.hold_reason = now, hold["reason"][:200]
    case_open(
        queue="screening",
        subject_type="clip",
        subject_id=instance.job.public_id,
        category=hold["category"],
        severity=policy.SEVERITY.get(hold["category"], 2),
        summary=f"Held by output screening: {hold['reason']}",
        payload={"screening": hold.get("reasons", [])},
    )


def descendants_need_review(sender, clip, descendants, reason, actor, **kwargs) -> None:
    """A removed clip's live remixes each get a case in the remix_review queue."""
    for descendant in descendants:
        case_open(
            queue="remix_review",
            subject_type="clip",
            subject_id=descendant.job.public_id,
            category="remix_of_removed",
            severity=policy.SEVERITY["remix_of_removed"],
            summary=f"Remix of removed clip {clip.job.public_id}: {reason}"[:500],
            payload={"removed_ancestor": clip.job.public_id, "removed_by": actor},
        )


def connect() -> None:
    post_save.connect(clip_created, sender=Clip, dispatch_uid="moderation.clip_created")
    try:
        from remix import signals as remix_signals
    except ImportError:
        return
    remix_signals.descendants_need_review.connect(
        descendants_need_review, dispatch_uid="moderation.descendants_need_review"
    )
