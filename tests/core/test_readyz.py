"""/readyz against the real services, and against real connection attempts that fail.

Failures are produced honestly: a port that was just bound and released (nothing listens, the
connection is refused) and a socket that listens but never accepts or answers (the TCP
handshake completes in the kernel backlog, then silence), never a mocked client.
"""

from __future__ import annotations

import socket
import time

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections

from core import health

pytestmark = pytest.mark.django_db

# CHECK_TIMEOUT (2 s) plus headroom for a slow CI machine; the point is "seconds, not minutes".
ANSWER_WITHIN = 6.0


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port():
    """Accepts TCP connections (kernel backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def timed_readyz(client):
    started = time.monotonic()
    response = client.get("/readyz")
    return response, time.monotonic() - started


def assert_not_ready(response, failing: list[str]):
    assert response.status_code == 503
    body = response.json()
    assert set(body) == {"error", "checks"}
    assert body["error"] == {
        "message": f"Not ready: {', '.join(failing)} unreachable.",
        "type": "server_error",
        "param": failing[0],
        "code": "dependency_unavailable",
    }
    assert set(body["checks"]) == {"postgres", "redis", "broker"}
    for name, result in body["checks"].items():
        if name in failing:
            assert result["ok"] is False
            assert set(result) == {"ok", "error"}
            assert result["error"]
        else:
            assert result["ok"] is True
    return body


def point_database_at(monkeypatch, port: int) -> None:
    # The view probes with this thread's connection settings; the test's own connection is
    # already open and unaffected. Patched on the wrapper itself, not the `connection` proxy,
    # whose instance __dict__ monkeypatch would restore by deleting the attribute.
    wrapper = connections[DEFAULT_DB_ALIAS]
    monkeypatch.setattr(
        wrapper, "settings_dict", {**wrapper.settings_dict, "HOST": "127.0.0.1", "PORT": str(port)}
    )


def test_ready_when_postgres_redis_and_broker_answer(client):
    response, elapsed = timed_readyz(client)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"postgres", "redis", "broker"}
    for result in body["checks"].values():
        assert result["ok"] is True
        assert set(result) == {"ok", "ms"}
        assert 0 <= result["ms"] < ANSWER_WITHIN * 1000
    assert elapsed < ANSWER_WITHIN


def test_redis_on_a_closed_port_is_named(client, settings, closed_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"
    response, elapsed = timed_readyz(client)
    body = assert_not_ready(response, ["redis"])
    assert "Connection refused" in body["checks"]["redis"]["error"]
    assert elapsed < ANSWER_WITHIN


def test_broker_on_a_closed_port_is_named(client, settings, closed_port):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port}/0"
    response, elapsed = timed_readyz(client)
    body = assert_not_ready(response, ["broker"])
    assert "Connection refused" in body["checks"]["broker"]["error"]
    assert elapsed < ANSWER_WITHIN


def test_postgres_on_a_closed_port_is_named(client, monkeypatch, closed_port):
    point_database_at(monkeypatch, closed_port)
    response, elapsed = timed_readyz(client)
    body = assert_not_ready(response, ["postgres"])
    assert "OperationalError" in body["checks"]["postgres"]["error"]
    assert "Connection refused" in body["checks"]["postgres"]["error"]
    assert elapsed < ANSWER_WITHIN
    # The request's own connection still works: the probe never touched it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_services_that_accept_and_never_answer_fail_within_seconds(
    client, settings, monkeypatch, silent_port
):
    """Without its own timeouts each check would wait for the kernel (minutes for Postgres,
    forever for the Redis broker transport)."""
    settings.REDIS_URL = f"redis://127.0.0.1:{silent_port}/0"
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_port}/0"
    point_database_at(monkeypatch, silent_port)
    response, elapsed = timed_readyz(client)
    assert_not_ready(response, ["postgres", "redis", "broker"])
    # The checks run side by side: the whole answer costs about one timeout, not three.
    assert elapsed < ANSWER_WITHIN


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:{port}/0", "Timeout"),
        ("amqp://guest:guest@127.0.0.1:{port}//", "timed out"),
    ],
)
def test_broker_check_is_bounded_for_redis_and_amqp(silent_port, url, expected):
    started = time.monotonic()
    with pytest.raises(Exception, match=expected):
        health.check_broker(url.format(port=silent_port))
    assert time.monotonic() - started < ANSWER_WITHIN
