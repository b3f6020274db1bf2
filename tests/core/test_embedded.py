"""The embedded default (config.embedded): a real PostgreSQL and Redis from pip wheels.

Driven as an operator drives it, through ``python -m config.embedded start|stop|destroy`` in
fresh processes with no DATABASE_URL / REDIS_URL and a data directory of the test's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from tests.fixtures import ROOT

# Deliberately no django_db mark: these processes never touch the test database.


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["MONTAGE_DATA_DIR"] = str(data_dir)
    # Each process gets its own str-hash salt, as in production.
    env["PYTHONHASHSEED"] = "random"
    return env


def embedded(data_dir: Path, command: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "config.embedded", command],
        cwd=ROOT,
        env=embedded_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def started_urls(data_dir: Path) -> dict[str, str]:
    lines = embedded(data_dir, "start").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def servers_for(data_dir: Path) -> dict[str, list[psutil.Process]]:
    """Live server processes of ``data_dir``: the postmaster (``postgres -D <dir>``) with its
    background processes (whose command lines do not name the dir), and redis-server."""
    found: dict[str, list[psutil.Process]] = {"postgres": [], "redis": []}
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if not alive(proc) or not any(str(data_dir) in arg for arg in cmdline):
            continue
        if proc.info["name"] == "postgres":
            found["postgres"] += [proc, *proc.children(recursive=True)]
        elif proc.info["name"] == "redis-server":
            found["redis"].append(proc)
    return found


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def data_dir():
    """A data dir outside pytest's tmp_path: pgserver runs postgres as the unprivileged
    'pgserver' user when started by root and opens the parents of the data dir to it, but every
    pytest session that starts (a concurrent run, an editor's test runner) resets
    /tmp/pytest-of-<user> to 0700, cutting a running server's pg_ctl off from its own
    postmaster.pid."""
    root = Path(tempfile.mkdtemp(prefix="montage-embedded-"))
    path = root / "data"
    yield path
    # Whatever happened in the test, no server may outlive it.
    if path.exists():
        embedded(path, "destroy")
    shutil.rmtree(root, ignore_errors=True)


def test_start_persist_stop_start_destroy(data_dir):
    urls = started_urls(data_dir)
    assert set(urls) == {"DATABASE_URL", "REDIS_URL"}
    assert urls["DATABASE_URL"] == f"postgresql://postgres:@/montage?host={data_dir}/postgres"
    assert urls["REDIS_URL"] == f"unix://{data_dir}/redis/redis.sock"

    with psycopg.connect(urls["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE survivor (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO survivor VALUES (1, 'written before stop')")
    client = redis.Redis.from_url(urls["REDIS_URL"])
    assert client.ping() is True
    client.set("survivor", "written before stop")
    client.close()

    # A second process attaches to the running servers instead of starting its own.
    running = servers_for(data_dir)
    assert started_urls(data_dir) == urls
    assert servers_for(data_dir) == running
    assert len(running["redis"]) == 1
    postmasters = [p for p in running["postgres"] if "-D" in p.cmdline()]
    assert len(postmasters) == 1
    assert len(running["postgres"]) > 1  # checkpointer, walwriter, ...

    assert embedded(data_dir, "stop").strip() == "stopped: redis, postgres"
    assert [p for procs in running.values() for p in procs if alive(p)] == []
    assert servers_for(data_dir) == {"postgres": [], "redis": []}
    assert embedded(data_dir, "stop").strip() == "stopped: nothing was running"

    assert started_urls(data_dir) == urls
    with psycopg.connect(urls["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT id, note FROM survivor").fetchall() == [
            (1, "written before stop")
        ]
    client = redis.Redis.from_url(urls["REDIS_URL"])
    assert client.get("survivor") == b"written before stop"
    client.close()

    running = servers_for(data_dir)
    assert embedded(data_dir, "destroy").strip() == "embedded data removed"
    assert [p for procs in running.values() for p in procs if alive(p)] == []
    assert servers_for(data_dir) == {"postgres": [], "redis": []}
    assert not (data_dir / "postgres").exists()
    assert not (data_dir / "redis").exists()


def test_long_data_dir_gives_every_process_the_same_redis_socket(tmp_path):
    """Past the ~107-byte Unix socket limit the socket moves to the temp dir under a name
    derived from the data dir; web and worker processes must all derive the same one."""
    long_dir = tmp_path / ("d" * 60) / ("e" * 60)
    probe = "from config import embedded; print(embedded._redis_socket())"

    def socket_path() -> str:
        result = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env=embedded_env(long_dir),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip()

    first, second = socket_path(), socket_path()
    assert first == second
    assert len(first) < 100
    assert not first.startswith(str(long_dir))
