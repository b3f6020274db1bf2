"""Assertions and builders shared by the accounts tests."""

from __future__ import annotations

import datetime as dt
import io

from django.utils import timezone
from PIL import Image

from accounts.models import ApiKey, Block, Follow, Notification, User
from tests.support.errors import assert_error

PASSWORD = "correct horse battery staple"  # what tests.factories.UserFactory sets


def accounts_state() -> dict[str, list[dict]]:
    """Every accounts row, for asserting that a denied request changed nothing.

    ``ApiKey.last_used_at`` is left out: authenticating the denied request itself touches it,
    which is bookkeeping, not a change the request asked for.
    """
    return {
        "users": list(User.objects.order_by("pk").values()),
        "follows": list(Follow.objects.order_by("pk").values()),
        "blocks": list(Block.objects.order_by("pk").values()),
        "notifications": list(Notification.objects.order_by("pk").values()),
        "api_keys": list(
            ApiKey.objects.order_by("pk").values(
                "id", "user_id", "name", "prefix", "key_hash", "created_at", "revoked_at"
            )
        ),
    }


def years_ago(years: int, *, days: int = 0) -> dt.date:
    """The birth date of someone who turns ``years`` today, shifted by ``days``."""
    today = timezone.localdate()
    try:
        born = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        born = today.replace(year=today.year - years, day=28)
    return born + dt.timedelta(days=days)


def image_bytes(
    size: tuple[int, int] = (64, 48),
    *,
    fmt: str = "PNG",
    mode: str = "RGB",
    color=(200, 30, 90),
    exif: bytes | None = None,
) -> bytes:
    image = Image.new(mode, size, color)
    out = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def page(client, url: str, **params) -> dict:
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"object", "data", "has_more", "next_cursor"}
    assert body["object"] == "list"
    assert body["has_more"] is (body["next_cursor"] is not None)
    return body


def handles(body: dict) -> list[str]:
    return [row["user"]["handle"] for row in body["data"]]


__all__ = ["assert_error"]
