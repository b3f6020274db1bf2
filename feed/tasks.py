"""Celery tasks: interfaces only."""

from __future__ import annotations

from celery import shared_task


@shared_task(
    name="feed.prune_sessions",
    time_limit=300,
    soft_time_limit=270,
    ignore_result=True,
)
def prune_sessions() -> int:
    from feed.services import feed_sessions_prune

    return feed_sessions_prune()


@shared_task(
    name="feed.build_for_you",
    time_limit=120,
    soft_time_limit=100,
    ignore_result=True,
)
def build_for_you(user_id: str, requested_at: str | None = None) -> bool:
    """Ranks the user's For You list, unless it was ranked after ``requested_at`` and not
    marked stale since (a duplicate or late message); False when nothing was done."""
    from datetime import datetime

    from accounts.models import User
    from feed.services import for_you_list_build, for_you_list_refresh_due

    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    asked = datetime.fromisoformat(requested_at) if requested_at else None
    if not for_you_list_refresh_due(user_id=user.pk, requested_at=asked):
        return False
    for_you_list_build(user=user)
    return True


@shared_task(
    name="feed.refresh_lists",
    time_limit=300,
    soft_time_limit=270,
    ignore_result=True,
)
def refresh_lists() -> int:
    from feed.services import for_you_lists_refresh

    return for_you_lists_refresh()
