"""Signals the remix app sends, and its one receiver.

``descendants_need_review(sender=None, clip=, descendants=[Clip, ...], reason=, actor=)`` is sent
inside the transaction of a policy takedown (remix.services.takedown_policy), so a review queue
that opens cases for the descendants commits or rolls back with the removal.
"""

from __future__ import annotations

from django.dispatch import Signal

descendants_need_review = Signal()


def clip_stored(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    """A clip was stored: record its lineage in the same transaction.

    The generation app has no hook after its last completion gate (a later gate may still refuse
    the job, and that transaction commits the refusal), so the edge is written when the clip row
    is: it exists exactly when the clip does.
    """
    if not created or raw or instance.job.parent_id is None:
        return
    from remix.services import lineage_record_for_clip

    lineage_record_for_clip(clip=instance)
