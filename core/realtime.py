"""Publishing events to a user's WebSocket connections through the Redis channel layer.

Every authenticated socket joins its user's group (``accounts.consumers``); any process —
web, Celery worker — publishes to it with :func:`publish_to_user`.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger("montage.realtime")


def user_group(user_id) -> str:
    return f"user.{user_id}"


def publish_to_user(user_id, event: str, data: dict) -> None:
    """Fire-and-forget: a user with no open socket simply misses the push (the durable copy,
    if any, is the notification row or the job row they can fetch)."""
    layer = get_channel_layer()
    message = {"type": "event.message", "event": event, "data": data}
    try:
        async_to_sync(layer.group_send)(user_group(user_id), message)
    except Exception:  # the push is best-effort; callers must not fail on it
        logger.warning("could not publish %s to user %s", event, user_id, exc_info=True)
