"""Moderation's periodic task: an interface over moderation.services.expire_due."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="moderation.expire", time_limit=300, soft_time_limit=270, ignore_result=True)
def expire() -> dict:
    from moderation.services import expire_due

    return expire_due()
