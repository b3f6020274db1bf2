"""Keyset (cursor) pagination: no OFFSET, stable while rows are inserted.

A view names its ordering (e.g. ``("-id",)``; UUIDv7 keys make ``-id`` newest-first). The cursor
is an opaque token holding the ordering values of the last row of the page; the next page
filters on them with a lexicographic keyset condition, which the ordering's index answers.
The ordering must be a total order over non-null fields: end it with a unique field (the
primary key), else rows that tie on every field may be skipped or repeated across pages.
"""

from __future__ import annotations

import base64
import json

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from core.errors import InvalidRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def encode_cursor(values: list) -> str:
    raw = json.dumps([str(v) if v is not None else None for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _invalid_cursor() -> InvalidRequest:
    return InvalidRequest("The cursor is not valid.", code="invalid_cursor", param="cursor")


def decode_cursor(token: str, size: int) -> list:
    try:
        padded = token + "=" * (-len(token) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid_cursor() from exc
    if not isinstance(values, list) or len(values) != size:
        raise _invalid_cursor()
    # encode_cursor writes only strings and nulls; anything else was not made here.
    if not all(value is None or isinstance(value, str) for value in values):
        raise _invalid_cursor()
    return values


def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if raw in (None, ""):
        return default
    try:
        limit = int(raw)
    except ValueError as exc:
        raise InvalidRequest(
            "limit must be an integer.", code="invalid_limit", param="limit"
        ) from exc
    if not 1 <= limit <= maximum:
        raise InvalidRequest(
            f"limit must be between 1 and {maximum}.", code="invalid_limit", param="limit"
        )
    return limit


def keyset_filter(ordering: tuple[str, ...], values: list) -> Q:
    """Rows strictly after ``values`` in ``ordering``: (a > x) | (a = x & b > y) | ..."""
    condition = Q()
    equal_so_far = Q()
    for field, value in zip(ordering, values, strict=True):
        name = field.lstrip("-")
        lookup = "lt" if field.startswith("-") else "gt"
        condition |= equal_so_far & Q(**{f"{name}__{lookup}": value})
        equal_so_far &= Q(**{name: value})
    return condition


def paginate_queryset(
    queryset: QuerySet, *, ordering: tuple[str, ...], cursor: str | None, limit: int
) -> tuple[list, str | None]:
    """Returns (rows of this page, cursor of the next page or None)."""
    queryset = queryset.order_by(*ordering)
    if cursor:
        values = decode_cursor(cursor, len(ordering))
        try:
            # Lookups convert their values here, so a forged value (not a UUID, not a date)
            # fails now rather than as a server error when the page is read.
            queryset = queryset.filter(keyset_filter(ordering, values))
        except (DjangoValidationError, ValueError, TypeError) as exc:
            raise _invalid_cursor() from exc
    rows = list(queryset[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor([_attr(last, field.lstrip("-")) for field in ordering])


def _attr(obj, dotted: str):
    for part in dotted.split("__"):
        obj = getattr(obj, part)
    return obj


class CursorPagination(BasePagination):
    """DRF pagination class: ``?limit=&cursor=``; answers
    ``{"object": "list", "data": [...], "has_more": bool, "next_cursor": str | null}``."""

    ordering: tuple[str, ...] = ("-id",)

    def paginate_queryset(self, queryset, request, view=None):
        ordering = tuple(getattr(view, "ordering", None) or self.ordering)
        limit = parse_limit(request.query_params.get("limit"))
        rows, self.next_cursor = paginate_queryset(
            queryset, ordering=ordering, cursor=request.query_params.get("cursor"), limit=limit
        )
        return rows

    def get_paginated_response(self, data):
        return Response(list_body(data, self.next_cursor))

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["object", "data", "has_more", "next_cursor"],
            "properties": {
                "object": {"type": "string", "enum": ["list"]},
                "data": schema,
                "has_more": {"type": "boolean"},
                "next_cursor": {"type": "string", "nullable": True},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "The next_cursor of the previous page.",
                "schema": {"type": "string"},
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Items per page, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            },
        ]


def list_body(data, next_cursor: str | None) -> dict:
    return {
        "object": "list",
        "data": data,
        "has_more": next_cursor is not None,
        "next_cursor": next_cursor,
    }
