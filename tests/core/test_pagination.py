"""Keyset (cursor) pagination: every row exactly once, even while rows are inserted."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Notification
from core.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    decode_cursor,
    encode_cursor,
    keyset_filter,
    paginate_queryset,
)
from tests.core.test_errors import error_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls_for_tests")]

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def notify(user, n: int, *, kind: str = "k", created_at: dt.datetime | None = None) -> list:
    return [
        Notification.objects.create(user=user, kind=kind, created_at=created_at or T0)
        for _ in range(n)
    ]


def walk(client, path: str, limit: int, between=None) -> tuple[list[str], list[dict]]:
    """Fetches every page; ``between(page_number)`` runs after each page is read."""
    ids: list[str] = []
    pages: list[dict] = []
    cursor = None
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = client.get(path, params)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body)
        ids.extend(row["id"] for row in body["data"])
        if between:
            between(len(pages))
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return ids, pages
        cursor = body["next_cursor"]
        assert len(pages) < 100, "pagination does not terminate"


def test_pages_cover_every_row_once_newest_first(user):
    rows = notify(user, 25)
    ids, pages = walk(APIClient(), "/api/v1/test/newest", 10)
    assert ids == [str(r.id) for r in reversed(rows)]
    assert [len(p["data"]) for p in pages] == [10, 10, 5]
    assert [p["has_more"] for p in pages] == [True, True, False]
    assert set(pages[0]) == {"object", "data", "has_more", "next_cursor"}
    assert pages[0]["object"] == "list"


def test_rows_inserted_between_fetches_cause_no_duplicates_or_skips(user):
    original = notify(user, 25)
    inserted: list = []

    def insert_more(page_number):
        # Newer rows sort before the cursor: they must not shift later pages.
        inserted.extend(notify(user, 4))

    ids, _ = walk(APIClient(), "/api/v1/test/newest", 7, between=insert_more)
    assert len(ids) == len(set(ids))
    assert ids == [str(r.id) for r in reversed(original)]
    assert not set(ids) & {str(r.id) for r in inserted}


def test_two_field_keyset_with_ties_and_inserts_on_both_sides(user):
    # Three rows per timestamp, so pages split inside runs of equal created_at.
    original = []
    for minute in range(8):
        original += notify(user, 3, created_at=T0 - dt.timedelta(minutes=minute))
    expected = [
        str(pk)
        for pk in Notification.objects.order_by("-created_at", "id").values_list("id", flat=True)
    ]
    late = []

    def insert_more(page_number):
        # One row newer than everything (before the cursor), one in the middle of the
        # remaining range (after it): the first never shows, the second shows once.
        notify(user, 1, created_at=T0 + dt.timedelta(hours=1))
        late.extend(notify(user, 1, created_at=T0 - dt.timedelta(minutes=6, seconds=30)))

    ids, _ = walk(APIClient(), "/api/v1/test/by-time", 4, between=insert_more)
    assert len(ids) == len(set(ids))
    assert [i for i in ids if i in set(expected)] == expected
    assert set(ids) - set(expected) <= {str(r.id) for r in late}


def test_pagination_uses_no_offset(user):
    notify(user, 5)
    client = APIClient()
    first = client.get("/api/v1/test/by-time", {"limit": 2}).json()
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/test/by-time", {"limit": 2, "cursor": first["next_cursor"]})
    assert response.status_code == 200
    selects = [q["sql"] for q in queries.captured_queries if "accounts_notification" in q["sql"]]
    assert len(selects) == 1
    assert "OFFSET" not in selects[0].upper()
    assert "LIMIT 3" in selects[0].upper()


def test_default_and_maximum_limits(user):
    notify(user, MAX_LIMIT + 1)
    client = APIClient()
    assert len(client.get("/api/v1/test/newest").json()["data"]) == DEFAULT_LIMIT
    body = client.get("/api/v1/test/newest", {"limit": MAX_LIMIT}).json()
    assert len(body["data"]) == MAX_LIMIT
    assert body["has_more"] is True


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("0", "limit must be between 1 and 100."),
        ("101", "limit must be between 1 and 100."),
        ("-1", "limit must be between 1 and 100."),
        ("x", "limit must be an integer."),
        ("1.5", "limit must be an integer."),
    ],
)
def test_out_of_range_or_non_integer_limit_is_400(limit, message):
    response = APIClient().get("/api/v1/test/newest", {"limit": limit})
    assert error_of(response, 400) == {
        "message": message,
        "type": "invalid_request_error",
        "param": "limit",
        "code": "invalid_limit",
    }


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "%%%%",
        _b64("not json"),
        _b64('{"id": 1}'),
        _b64('"just a string"'),
        _b64('["a", "b"]'),  # one value too many for a one-field ordering
        _b64("[]"),
        _b64('["not-a-uuid"]'),  # well-formed, but not a value of the ordering field
        _b64("[[1, 2]]"),
        _b64("[null]"),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_invalid_cursor_is_400_invalid_cursor(cursor):
    response = APIClient().get("/api/v1/test/newest", {"cursor": cursor})
    assert error_of(response, 400) == {
        "message": "The cursor is not valid.",
        "type": "invalid_request_error",
        "param": "cursor",
        "code": "invalid_cursor",
    }


def test_invalid_cursor_value_for_a_datetime_field_is_400():
    response = APIClient().get(
        "/api/v1/test/by-time", {"cursor": encode_cursor(["yesterday", "00000000-0000-0000"])}
    )
    assert error_of(response, 400)["code"] == "invalid_cursor"


# --- Units ------------------------------------------------------------------------------


def test_cursor_round_trips_and_is_url_safe():
    values = [T0, "0190f3b2-0000-7000-8000-000000000001", None]
    token = encode_cursor(values)
    assert "=" not in token and "+" not in token and "/" not in token
    assert decode_cursor(token, 3) == [str(T0), "0190f3b2-0000-7000-8000-000000000001", None]


def test_keyset_filter_single_field_directions():
    assert keyset_filter(("id",), [5]) == Q(id__gt=5)
    assert keyset_filter(("-id",), [5]) == Q(id__lt=5)


def test_keyset_filter_two_fields_is_lexicographic():
    assert keyset_filter(("-created_at", "id"), [T0, 7]) == Q(created_at__lt=T0) | (
        Q(created_at=T0) & Q(id__gt=7)
    )
    assert keyset_filter(("kind", "-id"), ["a", 7]) == Q(kind__gt="a") | (Q(kind="a") & Q(id__lt=7))


@pytest.mark.parametrize(
    "ordering",
    [("-created_at", "id"), ("created_at", "-id"), ("kind", "-id"), ("-kind", "created_at", "id")],
)
def test_keyset_filter_selects_exactly_the_rows_after_each_row(user, ordering):
    # Ties on the leading fields are the whole point: few kinds, few timestamps.
    for i in range(12):
        Notification.objects.create(
            user=user, kind="ab"[i % 2], created_at=T0 + dt.timedelta(seconds=i % 3)
        )
    ordered = list(Notification.objects.order_by(*ordering))
    for position, row in enumerate(ordered):
        values = [getattr(row, field.lstrip("-")) for field in ordering]
        after = list(
            Notification.objects.filter(keyset_filter(ordering, values)).order_by(*ordering)
        )
        assert after == ordered[position + 1 :], (ordering, position)


def test_keyset_filter_refuses_a_value_count_that_does_not_match():
    with pytest.raises(ValueError):
        keyset_filter(("-created_at", "id"), [T0])


def test_paginate_queryset_returns_next_cursor_of_the_last_row(user):
    rows = notify(user, 3)
    page, cursor = paginate_queryset(
        Notification.objects.all(), ordering=("-id",), cursor=None, limit=2
    )
    assert page == [rows[2], rows[1]]
    assert json.loads(base64.urlsafe_b64decode(cursor + "==")) == [str(rows[1].id)]
    page, cursor = paginate_queryset(
        Notification.objects.all(), ordering=("-id",), cursor=cursor, limit=2
    )
    assert page == [rows[0]]
    assert cursor is None
