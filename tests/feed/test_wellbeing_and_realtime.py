"""Teen daily limits, the "take a break" item, and pushes over the WebSocket when someone likes
or comments on your post."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.core.cache import cache
from django.db import connection
from websockets.asyncio.client import connect

from accounts.services import api_key_create, user_follow
from feed.services import _tally_keys
from tests.factories import TeenFactory, UserFactory
from tests.feed.helpers import client_for, ids, publish


@pytest.fixture
def feed_of(db):
    def make(viewer, n=8):
        author_pool = [UserFactory() for _ in range(n)]
        for a in author_pool:
            user_follow(follower=viewer, followee=a)
        return [publish(a, prompt=f"clip by {a.handle}") for a in author_pool]

    return make


@pytest.mark.parametrize("url", ["/api/v1/feed/for_you", "/api/v1/feed/following"])
def test_teen_feed_stops_at_the_daily_limit(settings, feed_of, url):
    settings.FEED_TEEN_DAILY_ITEMS = 5
    teen = TeenFactory()
    feed_of(teen)
    client = client_for(teen)
    first = client.get(url, {"limit": 3})
    assert len(ids(first)) == 3
    second = client.get(url, {"limit": 3, "cursor": first.json()["next_cursor"]})
    body = second.json()
    assert len(ids(second)) == 2
    # No continuous scroll past the limit: no cursor, and a closing item says why.
    assert body["next_cursor"] is None and body["has_more"] is False
    assert body["data"][-1]["type"] == "daily_limit"
    again = client.get(url).json()
    assert [item["type"] for item in again["data"]] == ["daily_limit"]
    assert again["next_cursor"] is None


def test_adults_have_no_daily_limit(settings, feed_of):
    settings.FEED_TEEN_DAILY_ITEMS = 2
    adult = UserFactory()
    feed_of(adult)
    response = client_for(adult).get("/api/v1/feed/following", {"limit": 5})
    assert len(ids(response)) == 5
    assert all(item["type"] == "post" for item in response.json()["data"])


def test_take_a_break_after_configured_watch_time(settings, feed_of):
    settings.FEED_BREAK_AFTER_MINUTES = 1
    viewer = UserFactory()
    posts = feed_of(viewer, n=3)
    client = client_for(viewer)
    assert client.get("/api/v1/feed/following").json()["data"][0]["type"] == "post"
    views = f"/api/v1/posts/{posts[0].public_id}/views"
    client.post(views, {"watch_ms": 45_000}, format="json")
    assert client.get("/api/v1/feed/following").json()["data"][0]["type"] == "post"
    client.post(views, {"watch_ms": 20_000, "completed": True}, format="json")
    data = client.get("/api/v1/feed/following").json()["data"]
    assert data[0]["type"] == "take_a_break"
    assert "1 minutes" in data[0]["message"]
    assert [item["type"] for item in data[1:]] == ["post"] * 3
    # Shown once per stretch of watching, not on every page after it.
    assert client.get("/api/v1/feed/following").json()["data"][0]["type"] == "post"
    assert cache.get(_tally_keys(viewer)[1]) == 65_000


@pytest.mark.django_db(transaction=True)
def test_likes_and_comments_on_your_post_are_pushed(module_asgi_server):
    author, fan = UserFactory(), UserFactory()
    post = publish(author)
    _, key = api_key_create(user=author, name="ws")
    fan_client = client_for(fan)
    url = module_asgi_server.replace("http://", "ws://", 1) + "/ws/"

    def call(method, *args, **kwargs):
        # Runs on a worker thread: its database connection must not outlive the call.
        try:
            return method(*args, **kwargs)
        finally:
            connection.close()

    async def next_event(ws) -> dict:
        return json.loads(await asyncio.wait_for(ws.recv(), 15))

    async def scenario():
        headers = {"Authorization": f"Bearer {key}"}
        async with connect(url, additional_headers=headers, proxy=None, open_timeout=10) as ws:
            assert (await next_event(ws))["event"] == "ready"
            await asyncio.to_thread(call, fan_client.post, f"/api/v1/posts/{post.public_id}/like")
            liked = await next_event(ws)
            await asyncio.to_thread(
                call,
                fan_client.post,
                f"/api/v1/posts/{post.public_id}/comments",
                {"body": "wow"},
                format="json",
            )
            commented = await next_event(ws)
        return liked, commented

    liked, commented = asyncio.run(scenario())
    assert liked["event"] == "notification"
    assert liked["data"]["kind"] == "post.liked"
    assert liked["data"]["actor"] == fan.handle
    assert liked["data"]["data"]["post_id"] == post.public_id
    assert commented["data"]["kind"] == "post.commented"
    assert commented["data"]["data"]["body"] == "wow"
