"""Tasks that exist only for the suite; workers started by tests load them with --include."""

from __future__ import annotations

import redis
from celery import shared_task
from django.conf import settings

from accounts.models import User
from core.realtime import publish_to_user


def _redis():
    return redis.Redis.from_url(settings.REDIS_URL)


@shared_task(name="tests.record_user_visibility")
def record_user_visibility(user_id: str, marker: str) -> None:
    """Records, under ``marker``, whether the worker could see the user row when it ran."""
    seen = User.objects.filter(pk=user_id).exists()
    _redis().set(marker, "seen" if seen else "missing", ex=300)


@shared_task(name="tests.publish_event")
def publish_event(user_id: str, event: str, data: dict) -> None:
    publish_to_user(user_id, event, data)
