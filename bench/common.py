"""What the benchmarks share: their own servers' databases, child processes, and statistics.

Benchmarks run against the same servers ``make test`` chooses (``config.testenv``: local
PostgreSQL and Redis when they answer, else the embedded ones) but never touch the data of a
running ``make run`` or test session: a fresh database per run (``montage_bench_<pid>``,
migrated, dropped at the end), Redis database 13 (flushed at start and end: it belongs to the
benchmarks), and media and signing keys under a temporary directory.

Nothing here imports Django at module level: ``configure()`` must set the environment before
the settings are first read, because an unset ``DATABASE_URL`` would start the embedded
servers of the development data directory.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REDIS_DB = 13

# Limits high enough that a few hundred requests by one user in a minute measure the request
# path, not the quota or throttle refusing it.
GENEROUS = {
    "GENERATION_CONCURRENT_LIMIT": "1000000",
    "GENERATION_DAILY_LIMIT": "1000000",
    "THROTTLE_USER": "1000000/min",
    "THROTTLE_IP": "1000000/min",
}


@dataclass
class BenchEnv:
    database_url: str
    admin_url: str  # the same server's maintenance database, to create and drop the bench one
    database_name: str
    redis_url: str
    scratch: Path


_env: BenchEnv | None = None


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=path))


def _redis_for_bench(url: str) -> tuple[str, str]:
    """(REDIS_URL, CELERY_BROKER_URL) for database ``REDIS_DB`` of the server at ``url``."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        # A socket URL names the database in its query, and kombu spells it virtual_host.
        socket_path = parts.path
        return (
            f"unix://{socket_path}?db={REDIS_DB}",
            f"redis+socket://{socket_path}?virtual_host={REDIS_DB}",
        )
    bench = urlunsplit(parts._replace(path=f"/{REDIS_DB}"))
    return bench, bench


def configure() -> BenchEnv:
    """Sets the environment of this process (and of every child it starts) once."""
    global _env
    if _env is not None:
        return _env
    os.environ.setdefault("MONTAGE_ENV", "test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from config import testenv

    chosen = testenv.choose()
    for key, value in chosen.items():
        if key == "MONTAGE_DATA_DIR":
            os.environ[key] = value
    name = f"montage_bench_{os.getpid()}"
    redis_url, broker_url = _redis_for_bench(chosen["REDIS_URL"])
    scratch = Path(tempfile.mkdtemp(prefix="montage-bench-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    _env = BenchEnv(
        database_url=_with_path(chosen["DATABASE_URL"], f"/{name}"),
        admin_url=_with_path(chosen["DATABASE_URL"], "/postgres"),
        database_name=name,
        redis_url=redis_url,
        scratch=scratch,
    )
    os.environ.update(
        {
            "DATABASE_URL": _env.database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": broker_url,
            # Media stays in the scratch directory, whatever storage the environment names.
            "STORAGE_BACKEND": "filesystem",
            "MEDIA_ROOT": str(scratch / "media"),
            "GENERATION_SIGNING_DIR": str(scratch / "signing"),
            "PYTHONUNBUFFERED": "1",
            **GENEROUS,
        }
    )
    return _env


def _flush_redis(url: str) -> None:
    import redis

    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(url).flushdb()


@contextlib.contextmanager
def bench_database():
    """A fresh, migrated database and an empty Redis database for this run; both are gone
    afterwards, as are the media and signing keys written meanwhile."""
    import psycopg

    env = configure()
    with psycopg.connect(env.admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{env.database_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{env.database_name}"')
    _flush_redis(env.redis_url)
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", interactive=False, verbosity=0)
        yield env
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        _flush_redis(env.redis_url)
        with psycopg.connect(env.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{env.database_name}" WITH (FORCE)')
        shutil.rmtree(env.scratch, ignore_errors=True)


# --- Child processes ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Proc:
    """A child process of the project's own binaries, its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None):
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env or dict(os.environ), stdout=self._log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self, what: str) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{self.output()[-4000:]}")

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# --- Statistics ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The ``q`` (0..100) percentile, nearest-rank: always one of the measured values."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def best_of(repeat: int, fn):
    """(best seconds, last result) of ``repeat`` calls of ``fn()``: the machine is shared, and
    only the minimum is stable."""
    best, result = math.inf, None
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def interleaved_best(repeat: int, runs: dict, *, timed: bool = False):
    """``{name: (best seconds, result of that run)}`` over ``repeat`` rounds, each round
    calling every ``runs[name]()`` once: a burst of load from a neighbour then slows one run of
    each, not all the repeats of one. With ``timed``, each call returns ``(seconds, result)``,
    its own clock (to leave its preparation out)."""
    best = {name: (math.inf, None) for name in runs}
    for _ in range(max(1, repeat)):
        for name, fn in runs.items():
            started = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - started
            if timed:
                elapsed, result = result
            if elapsed < best[name][0]:
                best[name] = (elapsed, result)
    return best


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def emit(lines: list[str], line: str) -> None:
    """Prints a figure as soon as it is known (a long run shows progress) and keeps it."""
    print(line, flush=True)
    lines.append(line)
