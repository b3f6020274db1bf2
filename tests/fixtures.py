"""Fixtures shared by the whole suite.

Everything runs against the real Postgres and Redis chosen by ``make test`` (config.testenv).
Fixtures that start real processes (a Celery worker, the ASGI server) point them at the test
database, so they see exactly what the test wrote and committed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.services import api_key_create
from tests.factories import TeenFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session", autouse=True)
def _media_root(tmp_path_factory):
    """Media written by the suite (and by worker processes it starts, which inherit the
    variable) goes to a temporary directory, not the developer's data directory."""
    from django.conf import settings

    media = tmp_path_factory.mktemp("media")
    os.environ["MEDIA_ROOT"] = str(media)
    settings.MEDIA_ROOT = media
    yield media


@pytest.fixture(autouse=True)
def _clean_redis_cache():
    """Throttle counters and cached values must not leak from one test into the next."""
    cache.clear()
    yield


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def teen(db):
    return TeenFactory()


@pytest.fixture
def anon_client():
    return APIClient()


def client_for(user) -> APIClient:
    """An APIClient that authenticates as ``user`` with a real API key, as an SDK would."""
    _, raw = api_key_create(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.user = user
    client.api_key = raw
    return client


@pytest.fixture
def api(user):
    return client_for(user)


# --- Real processes -----------------------------------------------------------------------


def database_url_for(settings_dict: dict) -> str:
    """A DATABASE_URL for the database Django is connected to (the test database)."""
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    host = settings_dict.get("HOST") or ""
    port = settings_dict.get("PORT") or ""
    name = settings_dict["NAME"]
    auth = f"{user}:{password}@" if password else f"{user}@"
    if host.startswith("/"):
        return f"postgresql://{auth}/{name}?host={quote(host)}"
    return f"postgresql://{auth}{host}{':' + str(port) if port else ''}/{name}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env() -> dict[str, str]:
    from django.db import connection

    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for(connection.settings_dict)
    env["MONTAGE_ENV"] = "test"
    env["PYTHONUNBUFFERED"] = "1"
    env["DB_CONN_MAX_AGE"] = "0"
    return env


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Proc:
    def __init__(self, args: list[str], log: Path, env: dict[str, str]):
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def start_worker(
    tmp_path: Path,
    *,
    queues: str = "gpu,cpu",
    name: str = "w1",
    extra_env=None,
    include: str | None = None,
) -> Proc:
    """A real Celery worker process on the real broker, consuming ``queues``."""
    from config.celery import app

    hostname = f"{name}-{os.getpid()}-{time.monotonic_ns()}@test"
    args = [
        str(BIN / "celery"),
        "-A",
        "config",
        "worker",
        "-Q",
        queues,
        "--concurrency",
        "1",
        "--pool",
        "prefork",
        "--loglevel",
        "INFO",
        "--hostname",
        hostname,
        "--without-gossip",
        "--without-mingle",
    ]
    if include:
        args += ["--include", include]
    env = process_env() | (extra_env or {})
    proc = Proc(args, tmp_path / f"{name}.log", env)

    def ready():
        if proc.popen.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{proc.output()}")
        replies = app.control.ping(destination=[hostname], timeout=0.5)
        return bool(replies)

    wait_for(ready, 60, "the Celery worker to answer a ping", interval=0.2)
    proc.hostname = hostname
    return proc


@pytest.fixture
def celery_worker_proc(transactional_db, tmp_path):
    proc = start_worker(tmp_path, include="tests.support.tasks")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def module_celery_worker(django_db_setup, tmp_path_factory):
    """One worker for a whole module (it takes seconds to start). Tests using it must commit
    what the worker should see: mark them ``django_db(transaction=True)``."""
    proc = start_worker(tmp_path_factory.mktemp("worker"), include="tests.support.tasks")
    yield proc
    proc.stop()


def start_asgi_server(tmp_path: Path, extra_env=None) -> tuple[Proc, str]:
    port = free_port()
    args = [
        str(BIN / "uvicorn"),
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--log-level",
        "warning",
    ]
    proc = Proc(args, tmp_path / "asgi.log", process_env() | (extra_env or {}))
    base = f"http://127.0.0.1:{port}"

    def up():
        if proc.popen.poll() is not None:
            raise RuntimeError(f"ASGI server exited early:\n{proc.output()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_for(up, 60, "the ASGI server to listen")
    return proc, base


@pytest.fixture
def asgi_server(transactional_db, tmp_path):
    """The real ASGI app under uvicorn (HTTP + WebSockets) on a free loopback port."""
    proc, base = start_asgi_server(tmp_path)
    yield base
    proc.stop()


@pytest.fixture(scope="module")
def module_asgi_server(django_db_setup, tmp_path_factory):
    """``asgi_server`` shared by a module; its tests must be ``django_db(transaction=True)``
    so the server's own connections see their rows."""
    proc, base = start_asgi_server(tmp_path_factory.mktemp("asgi"))
    yield base
    proc.stop()


__all__ = ["TeenFactory", "client_for"]
