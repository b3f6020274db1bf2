"""The WebSocket every client keeps open at ``/ws/``: one per-user group for all events."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.authentication import bearer_token, user_for_token
from core import metrics
from core.errors import AuthenticationRequired
from core.realtime import user_group

# 4000-4999 are application close codes; 4401 mirrors HTTP 401 so clients can tell "get a new
# token" from a network drop worth reconnecting after.
CLOSE_UNAUTHENTICATED = 4401


@database_sync_to_async
def _authenticate(raw: str):
    """``(user, None)``, or ``(None, code)`` with the reason the token was refused."""
    try:
        return user_for_token(raw), None
    except AuthenticationRequired as exc:
        return None, exc.code


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
    (job progress, notifications, ...).

    A handshake without a usable token is accepted and at once closed with 4401 and the reason
    (``token_required``, ``invalid_api_key``, ``api_key_revoked``, ``invalid_token``, ...): a
    handshake refused outright reaches a browser as a bare 1006 with no reason at all.
    """

    async def connect(self):
        raw = token_from_scope(self.scope)
        user, reason = await _authenticate(raw) if raw else (None, "token_required")
        if user is None:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED, reason=reason)
            return
        self.scope["user"] = user
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        metrics.websocket_opened(self.channel_name)
        await self.send_json(
            {"event": "ready", "data": {"user": str(user.pk), "handle": user.handle}}
        )

    async def __call__(self, scope, receive, send):
        # Counted out here rather than in disconnect(), which a consumer that dies of an
        # exception (its channel layer failing, say) never reaches.
        try:
            return await super().__call__(scope, receive, send)
        finally:
            metrics.websocket_closed(getattr(self, "channel_name", ""))

    async def disconnect(self, code):
        group = getattr(self, "group", None)
        if group:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        # A frame that is not JSON text would otherwise raise inside the consumer and drop the
        # socket with 1011; a client bug deserves an answer, not a disconnect.
        if text_data is None:
            await self.send_json({"event": "error", "data": {"code": "text_frames_only"}})
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError:
            await self.send_json({"event": "error", "data": {"code": "invalid_json"}})
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"event": "pong", "data": {}})

    async def event_message(self, message):
        await self.send_json({"event": message["event"], "data": message["data"]})
