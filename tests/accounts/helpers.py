"""Assertions and builders shared by the accounts tests."""

from __future__ import annotations

import datetime as dt
import io

from django.utils import timezone
from PIL import Image

from accounts.models import ApiKey, Block, Follow, Notification, User

PASSWORD = "correct horse battery staple"  # what tests.factories.UserFactory sets

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
}


def assert_error(response, status: int, *, code: str, param: str | None = None) -> dict:
    """The response is exactly the one error shape, with this status, code and param."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == ERROR_TYPES[status]
    assert error["code"] == code
    assert error["param"] == param
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


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
