"""Liveness and readiness probes.

``/healthz``: the process is alive and serving (no dependency is touched, so a database
outage never makes an orchestrator kill healthy web pods). ``/readyz``: Postgres, Redis and the
Celery broker each answer; otherwise 503 in the error shape naming the failing part.

Every check has its own short timeout and the checks run side by side under one deadline, so a
dependency that hangs (a blackholed host, a server that accepts and never answers) costs the
probe a few seconds at most instead of the operating system's TCP timeout.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import load_backend
from django.http import JsonResponse
from django.views.decorators.http import require_GET
from kombu import Connection
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.errors import error_body

CHECK_TIMEOUT = 2.0
# Headroom over CHECK_TIMEOUT for the library's own bookkeeping; past it a check counts as hung.
DEADLINE = CHECK_TIMEOUT + 1.5


def check_database(settings_dict: dict) -> None:
    """Opens a fresh connection with a bounded connect timeout and runs ``SELECT 1``.

    Not the request's pooled connection: its settings carry no connect timeout (libpq then
    waits for the kernel, minutes for a blackholed host), and a probe must prove that new
    connections can be made, which is what a restarted worker will need.
    """
    params = {**settings_dict}
    options = dict(params.get("OPTIONS") or {})
    # libpq rounds anything below 2 s up to 2 s.
    options["connect_timeout"] = max(2, math.ceil(CHECK_TIMEOUT))
    params["OPTIONS"] = options
    backend = load_backend(params["ENGINE"])
    probe = backend.DatabaseWrapper(params, alias=f"{DEFAULT_DB_ALIAS}-readyz")
    try:
        with probe.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        probe.close()


def check_redis(url: str) -> None:
    # redis-py 6 retries a failed command three times with backoff by default, which would
    # turn one refused connection into several seconds of waiting.
    client = redis.Redis.from_url(
        url,
        socket_timeout=CHECK_TIMEOUT,
        socket_connect_timeout=CHECK_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.ping()
    finally:
        client.close()


def check_broker(url: str) -> None:
    # The configured transport options (visibility timeout, sentinel master, ...) still apply,
    # with the socket timeouts shortened: without socket_timeout the Redis transport waits
    # forever on a server that accepts the connection and never answers.
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {})
    options.update(socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT)
    with Connection(url, connect_timeout=CHECK_TIMEOUT, transport_options=options) as conn:
        conn.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT)


def _timed(check) -> float:
    started = time.perf_counter()
    check()
    return round((time.perf_counter() - started) * 1000, 1)


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    # Read in the request thread: the database settings belong to this thread's connection
    # handler, and each check then runs on a pool thread of its own.
    checks = (
        ("postgres", partial(check_database, connections[DEFAULT_DB_ALIAS].settings_dict)),
        ("redis", partial(check_redis, settings.REDIS_URL)),
        ("broker", partial(check_broker, settings.CELERY_BROKER_URL)),
    )
    results: dict[str, dict] = {}
    failing: list[str] = []
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readyz")
    try:
        futures = {name: pool.submit(_timed, check) for name, check in checks}
        deadline = time.monotonic() + DEADLINE
        for name, future in futures.items():
            try:
                ms = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                results[name] = {"ok": False, "error": f"no answer within {DEADLINE:g} s"}
                failing.append(name)
            except Exception as exc:  # any failure of a dependency means "not ready"
                results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
                failing.append(name)
            else:
                results[name] = {"ok": True, "ms": ms}
    finally:
        # A hung check keeps its thread until its own socket timeout fires; the answer does
        # not wait for it.
        pool.shutdown(wait=False, cancel_futures=True)
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
