"""Liveness and readiness probes.

``/healthz``: the process is alive and serving (no dependency is touched, so a database
outage never makes an orchestrator kill healthy web pods). ``/readyz``: Postgres, Redis and the
Celery broker each answer; otherwise 503 in the error shape naming the failing part.
"""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from kombu import Connection

from core.errors import error_body

CHECK_TIMEOUT = 2.0


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_redis() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT
    )
    try:
        client.ping()
    finally:
        client.close()


def _check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT) as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT)


CHECKS = (("postgres", _check_database), ("redis", _check_redis), ("broker", _check_broker))


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    results: dict[str, dict] = {}
    failing: list[str] = []
    for name, check in CHECKS:
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure of a dependency means "not ready"
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
            failing.append(name)
        else:
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
    if failing:
        body = error_body(
            f"Not ready: {', '.join(failing)} unreachable.",
            status=503,
            code="dependency_unavailable",
            param=failing[0],
        )
        body["checks"] = results
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ready", "checks": results})
