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
