"""The WebSocket every client keeps open at ``/ws/``: one per-user group for all events."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.authentication import bearer_token, user_for_token
from core.errors import AuthenticationRequired
from core.realtime import user_group

CLOSE_UNAUTHENTICATED = 4401


@database_sync_to_async
def _authenticate(raw: str):
    try:
        return user_for_token(raw)
    except AuthenticationRequired:
        return None


def token_from_scope(scope) -> str | None:
    """``Authorization: Bearer`` (mobile clients, SDKs) or ``?token=`` (browsers cannot set
    headers on a WebSocket handshake)."""
    headers = dict(scope.get("headers") or [])
    token = bearer_token(headers.get(b"authorization"))
    if token:
        return token
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    values = query.get("token")
    return values[0] if values else None


class EventsConsumer(AsyncJsonWebsocketConsumer):
    """Pushes ``{"event": ..., "data": ...}`` for whatever is published to the user's group
    (job progress, notifications, ...). Unauthenticated handshakes are refused."""

    async def connect(self):
        raw = token_from_scope(self.scope)
        user = await _authenticate(raw) if raw else None
        if user is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.scope["user"] = user
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(
            {"event": "ready", "data": {"user": str(user.pk), "handle": user.handle}}
        )

    async def disconnect(self, code):
        group = getattr(self, "group", None)
        if group:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"event": "pong", "data": {}})

    async def event_message(self, message):
        await self.send_json({"event": message["event"], "data": message["data"]})
