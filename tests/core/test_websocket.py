"""The /ws/ events socket, end to end: a real uvicorn server, real clients, a real worker.

Clients are the ``websockets`` package, as a mobile app or SDK would connect; events come from
a Celery task in a separate worker process through the Redis channel layer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from urllib.parse import quote

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from accounts.services import api_key_create, api_key_revoke
from tests.factories import UserFactory
from tests.support.tasks import publish_event

pytestmark = pytest.mark.django_db(transaction=True)

RECV_TIMEOUT = 15


def ws_url(base: str, query: str = "") -> str:
    return base.replace("http://", "ws://", 1) + "/ws/" + (f"?{query}" if query else "")


def open_socket(base: str, *, token: str | None = None, query: str = "", origin=None):
    headers = {"Authorization": f"Bearer {token}"} if token else None
    # proxy=None: websockets otherwise honours *_PROXY variables, even for loopback.
    return connect(
        ws_url(base, query), additional_headers=headers, origin=origin, proxy=None, open_timeout=10
    )


async def next_event(ws, timeout: float = RECV_TIMEOUT) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def ready_event(user) -> dict:
    return {"event": "ready", "data": {"user": str(user.pk), "handle": user.handle}}


def test_api_key_in_authorization_header_gets_ready_then_pong(module_asgi_server):
    user = UserFactory()
    _, key = api_key_create(user=user, name="ws")

    async def scenario():
        async with open_socket(module_asgi_server, token=key) as ws:
            assert await next_event(ws) == ready_event(user)
            await ws.send(json.dumps({"type": "ping"}))
            assert await next_event(ws) == {"event": "pong", "data": {}}
            # A client bug gets an answer, and the socket stays usable.
            await ws.send("not json")
            assert await next_event(ws) == {"event": "error", "data": {"code": "invalid_json"}}
            await ws.send(json.dumps({"type": "ping"}))
            assert await next_event(ws) == {"event": "pong", "data": {}}

    asyncio.run(scenario())


def test_jwt_in_query_string_gets_ready(module_asgi_server):
    user = UserFactory()
    access = str(RefreshToken.for_user(user).access_token)

    async def scenario():
        async with open_socket(module_asgi_server, query=f"token={quote(access)}") as ws:
            assert await next_event(ws) == ready_event(user)

    asyncio.run(scenario())


def test_event_published_by_a_celery_task_reaches_only_its_user(
    module_asgi_server, module_celery_worker
):
    alice, bob = UserFactory(), UserFactory()
    _, alice_key = api_key_create(user=alice, name="ws")
    bob_jwt = str(RefreshToken.for_user(bob).access_token)

    async def scenario():
        async with (
            open_socket(module_asgi_server, token=alice_key) as alice_ws,
            open_socket(module_asgi_server, query=f"token={quote(bob_jwt)}") as bob_ws,
        ):
            # "ready" comes after the socket joined its user's group: from here on, every
            # event published to that group is delivered.
            assert await next_event(alice_ws) == ready_event(alice)
            assert await next_event(bob_ws) == ready_event(bob)

            publish_event.delay(str(bob.pk), "job.progress", {"job": "j1", "progress": 0.5})
            assert await next_event(bob_ws) == {
                "event": "job.progress",
                "data": {"job": "j1", "progress": 0.5},
            }
            # Bob's event was delivered before this one was even sent, so had Alice's socket
            # received it, it would come first.
            publish_event.delay(str(alice.pk), "notification", {"kind": "follow"})
            assert await next_event(alice_ws) == {
                "event": "notification",
                "data": {"kind": "follow"},
            }
            with pytest.raises(TimeoutError):
                await next_event(bob_ws, timeout=1.0)

    asyncio.run(scenario())


def _expired_jwt(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - dt.timedelta(hours=1))
    return str(token)


@pytest.mark.parametrize(
    ("credential", "reason"),
    [
        ("none", "token_required"),
        ("empty-bearer", "token_required"),
        ("garbage-key", "invalid_api_key"),
        ("garbage-jwt", "invalid_token"),
        ("expired-jwt", "invalid_token"),
        ("revoked-key", "api_key_revoked"),
        ("inactive-user-key", "account_disabled"),
    ],
)
def test_socket_without_a_usable_token_is_closed_with_4401(module_asgi_server, credential, reason):
    """The handshake completes and the server closes at once with 4401 and the reason, before
    sending anything: no "ready", no events."""
    user = UserFactory()
    token, query = None, ""
    if credential == "empty-bearer":
        query = "token="
    elif credential == "garbage-key":
        token = "mk_0123456789ab_not-a-real-secret"
    elif credential == "garbage-jwt":
        token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    elif credential == "expired-jwt":
        query = f"token={quote(_expired_jwt(user))}"
    elif credential == "revoked-key":
        key, token = api_key_create(user=user, name="ws")
        api_key_revoke(key=key)
    elif credential == "inactive-user-key":
        _, token = api_key_create(user=user, name="ws")
        user.is_active = False
        user.save(update_fields=["is_active"])

    async def scenario():
        async with open_socket(module_asgi_server, token=token, query=query) as ws:
            with pytest.raises(ConnectionClosedError) as closed:
                await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
        return closed.value

    closed = asyncio.run(scenario())
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4401, reason)


def test_browser_origin_must_be_an_allowed_host(module_asgi_server):
    """Clients without an Origin header (apps, SDKs) are let through to the token check
    above; a page on a foreign origin is refused at the handshake with 403."""
    user = UserFactory()
    _, key = api_key_create(user=user, name="ws")

    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            async with open_socket(module_asgi_server, token=key, origin="https://evil.example"):
                pass
        own_origin = module_asgi_server  # http://127.0.0.1:<port>, a host in ALLOWED_HOSTS
        async with open_socket(module_asgi_server, token=key, origin=own_origin) as ws:
            assert await next_event(ws) == ready_event(user)
        return refused.value.response.status_code

    assert asyncio.run(scenario()) == 403
