"""Builders for the feed tests: drafts written the way the worker writes them, published through
the real service."""

from __future__ import annotations

from feed.models import Post
from feed.services import post_publish
from generation.models import ClipAudience
from tests.fixtures import client_for
from tests.remix.helpers import make_clip


def draft(owner, *, prompt: str = "a red ball bouncing", parent=None, **fields):
    return make_clip(owner, prompt=prompt, parent=parent, audience=ClipAudience.ONLY_ME, **fields)


def publish(
    owner,
    *,
    prompt: str = "a red ball bouncing",
    caption: str = "",
    parent=None,
    visibility: str = ClipAudience.PUBLIC,
    **fields,
) -> Post:
    clip = draft(owner, prompt=prompt, parent=parent, **fields)
    return post_publish(
        user=owner, video_id=clip.job.public_id, caption=caption, visibility=visibility
    )


def ids(response) -> list[str]:
    return [item["post"]["id"] for item in response.json()["data"] if item["type"] == "post"]


__all__ = ["client_for", "draft", "ids", "publish"]
