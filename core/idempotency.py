"""``Idempotency-Key`` for POSTs that create things, built once for every such endpoint.

Same key + same request -> the first response, replayed (``Idempotent-Replayed: true``).
Same key + a different request -> 422 ``idempotency_key_reused``. Keys expire after
``IDEMPOTENCY_KEY_TTL``. Requests that fail (any error response or exception) roll back with
their key, so the client may retry them with the same key.
"""

from __future__ import annotations

import functools
import hashlib
import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.response import Response

from core.errors import Conflict, InvalidRequest, Unprocessable
from core.models import IdempotencyKey
from core.throttling import client_ip

HEADER = "Idempotency-Key"
REPLAYED_HEADERS = ("Location", "Content-Location")
# Each attempt either claims, replays, refuses, or finds the row gone or expired; more than a
# few in a row means something keeps deleting the key under this request.
CLAIM_ATTEMPTS = 5


def _canonical(value):
    if hasattr(value, "read") and hasattr(value, "name"):  # an uploaded file
        digest = hashlib.sha256()
        for chunk in value.chunks():
            digest.update(chunk)
        value.seek(0)
        return {"file": value.name, "sha256": digest.hexdigest(), "size": value.size}
    if hasattr(value, "lists"):  # QueryDict: keep every value of repeated fields
        return {k: [_canonical(v) for v in vs] for k, vs in sorted(value.lists())}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def request_fingerprint(request) -> str:
    payload = {
        "method": request.method,
        "path": request.path,
        "query": sorted(request.query_params.lists()),
        "data": _canonical(request.data),
    }
    blob = json.dumps(payload, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _scope(request) -> str:
    user = request.user
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_ip(request)}"


def _claim(*, scope: str, key: str, request, fingerprint: str) -> bool:
    """Inserts the key row; False if the key exists. Blocks while another uncommitted
    transaction holds the same key, which is what serialises concurrent duplicates."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {IdempotencyKey._meta.db_table}
                (scope, key, method, path, request_hash, status_code, response_body,
                 response_headers, created_at, expires_at)
            VALUES (%s, %s, %s, %s, %s, 0, NULL, '{{}}', %s, %s)
            ON CONFLICT (scope, key) DO NOTHING
            RETURNING id
            """,  # noqa: S608 - table name from model meta, values parameterised
            [
                scope,
                key,
                request.method,
                request.path[:500],
                fingerprint,
                now,
                now + settings.IDEMPOTENCY_KEY_TTL,
            ],
        )
        return cursor.fetchone() is not None


def _replay(row: IdempotencyKey) -> Response:
    response = Response(row.response_body, status=row.status_code)
    for name, value in row.response_headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(view_method):
    """Decorates an APIView's ``post``: runs it at most once per (caller, Idempotency-Key)."""

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view_method(self, request, *args, **kwargs)
        if not (1 <= len(key) <= 255) or not key.isprintable():
            raise InvalidRequest(
                "Idempotency-Key must be 1-255 printable characters.",
                code="invalid_idempotency_key",
                param=HEADER,
            )
        scope = _scope(request)
        fingerprint = request_fingerprint(request)
        with transaction.atomic():
            for _attempt in range(CLAIM_ATTEMPTS):
                if _claim(scope=scope, key=key, request=request, fingerprint=fingerprint):
                    break
                row = (
                    IdempotencyKey.objects.select_for_update().filter(scope=scope, key=key).first()
                )
                if row is None:
                    # Deleted while this request waited for its lock (the purge, or another
                    # retry renewing an expired key): claim it again from the start.
                    continue
                if row.expires_at <= timezone.now():
                    row.delete()
                    continue
                if row.request_hash != fingerprint:
                    raise Unprocessable(
                        "This Idempotency-Key was already used with a different request; "
                        "use a new key for a new request.",
                        code="idempotency_key_reused",
                        param=HEADER,
                    )
                return _replay(row)
            else:
                raise Conflict(
                    "Another request with this Idempotency-Key is changing it; retry shortly.",
                    code="idempotency_key_in_use",
                    param=HEADER,
                )
            response = view_method(self, request, *args, **kwargs)
            if response.status_code >= 400:
                # Errors are not remembered: roll back the key with whatever the view did.
                transaction.set_rollback(True)
                return response
            IdempotencyKey.objects.filter(scope=scope, key=key).update(
                status_code=response.status_code,
                response_body=response.data,
                response_headers={h: response[h] for h in REPLAYED_HEADERS if h in response},
            )
            return response

    return wrapper


def purge_expired() -> int:
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
