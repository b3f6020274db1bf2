"""The system under load, on loopback: its database, its seed data and its server processes.

It runs against the servers ``make test`` and ``make bench`` choose (``config.testenv``: local
PostgreSQL and Redis when they answer, else the embedded ones), but in data of its own: a
fresh database ``montage_load_<pid>`` (dropped at the end), Redis database ``LOAD_REDIS_DB``
(default 12; flushed at start and end, it belongs to load runs: a test session pointed at
the same database empties it before every test, which the report shows as counters going
backwards), and media, signing keys and Prometheus files under a temporary directory. The
embedded servers, when used, are shared with tests and benchmarks and are left running, as
``make bench`` leaves them.

Nothing here imports Django at module level: :func:`configure` must set the environment before
the settings are first read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.common import BIN, GENEROUS, ROOT, Proc, _with_path, cpus, free_port, listening, wait_for

DEFAULT_REDIS_DB = 12
GUNICORN_CONFIG = ROOT / "config" / "gunicorn.py"
# What the simulated creators ask for: the previs engine's smallest frame and duration, so a
# job is seconds of work on two shared cores (the native API accepts them; the OpenAI shape
# needs at least 720x1280 and 4 s).
GENERATION = {
    "model": "previs",
    "size": "512x512",
    "seconds": 1,
    "prompts": [
        "a red ball bouncing on a beach at sunset",
        "a paper boat drifting down a rainy street",
        "a tiny astronaut dancing on the moon",
        "a robot chef flipping pancakes in a cozy kitchen",
    ],
}


@dataclass
class LoadEnv:
    database_url: str
    admin_url: str
    database_name: str
    redis_url: str
    redis_db: int
    scratch: Path
    metrics_token: str


def _redis_urls(url: str, db: int) -> tuple[str, str]:
    """(REDIS_URL, CELERY_BROKER_URL) for database ``db`` of the server at ``url``."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        # A socket URL names the database in its query, and kombu spells it virtual_host.
        return f"unix://{parts.path}?db={db}", f"redis+socket://{parts.path}?virtual_host={db}"
    url = urlunsplit(parts._replace(path=f"/{db}"))
    return url, url


def configure() -> LoadEnv:
    """Sets the environment of this process and of every child it starts."""
    os.environ.setdefault("MONTAGE_ENV", "test")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from config import testenv

    chosen = testenv.choose()
    if "MONTAGE_DATA_DIR" in chosen:
        os.environ["MONTAGE_DATA_DIR"] = chosen["MONTAGE_DATA_DIR"]
    name = f"montage_load_{os.getpid()}"
    redis_db = int(os.environ.get("LOAD_REDIS_DB", DEFAULT_REDIS_DB))
    redis_url, broker_url = _redis_urls(chosen["REDIS_URL"], redis_db)
    scratch = Path(tempfile.mkdtemp(prefix="montage-load-"))
    env = LoadEnv(
        database_url=_with_path(chosen["DATABASE_URL"], f"/{name}"),
        admin_url=_with_path(chosen["DATABASE_URL"], "/postgres"),
        database_name=name,
        redis_url=redis_url,
        redis_db=redis_db,
        scratch=scratch,
        metrics_token=secrets.token_urlsafe(24),
    )
    prometheus_dir = scratch / "prometheus"
    prometheus_dir.mkdir()
    os.environ.update(
        {
            "DATABASE_URL": env.database_url,
            "REDIS_URL": redis_url,
            "CELERY_BROKER_URL": broker_url,
            # Media stays in the scratch directory, whatever storage the environment names.
            "STORAGE_BACKEND": "filesystem",
            "MEDIA_ROOT": str(scratch / "media"),
            # MONTAGE_ENV=test re-compiles every feed query to check it; production does not.
            "FEED_VERIFY_COMPILED_QUERIES": "false",
            "GENERATION_SIGNING_DIR": str(scratch / "signing"),
            "PYTHONUNBUFFERED": "1",
            # Every simulated client comes from 127.0.0.1: the per-address throttle would
            # measure itself. Quotas likewise would refuse the generations under test.
            **GENEROUS,
            # /metrics: the bearer token it may require, and the directory in which
            # prometheus_client's multiprocess mode lets every web and worker process share
            # its series (one directory for one run, empty at the start).
            "METRICS_TOKEN": env.metrics_token,
            "PROMETHEUS_MULTIPROC_DIR": str(prometheus_dir),
        }
    )
    return env


def _flush_redis(url: str) -> None:
    import redis

    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(url).flushdb()


def create_database(env: LoadEnv) -> None:
    import psycopg

    with psycopg.connect(env.admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{env.database_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{env.database_name}"')
    _flush_redis(env.redis_url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def drop_database(env: LoadEnv) -> None:
    import psycopg

    with contextlib.suppress(Exception):
        from django.db import connections

        connections.close_all()
    _flush_redis(env.redis_url)
    with psycopg.connect(env.admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{env.database_name}" WITH (FORCE)')
    shutil.rmtree(env.scratch, ignore_errors=True)


# --- Seed ---------------------------------------------------------------------------------


def seed(*, users: int, posts: int, viewers: int, watchers: int, token_ttl_s: int) -> dict:
    """A social graph (the feed benchmark's: users, posts with embeddings, likes, views,
    follows) and a JWT for each simulated client, as a mobile client would hold after
    ``POST /api/v1/auth/token``. Viewers and WebSocket watchers get distinct accounts, so a
    watcher's socket only carries its own jobs' events."""
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import User
    from bench.feed import _seed

    accounts = max(users, viewers + watchers)
    _seed(users=accounts, posts=posts, likes=posts * 5, follows=accounts * 20)
    people = list(User.objects.filter(handle__startswith="bench").order_by("handle"))
    lifetime = dt.timedelta(seconds=token_ttl_s)

    def token(user) -> str:
        access = RefreshToken.for_user(user).access_token
        access.set_exp(lifetime=lifetime)
        return str(access)

    return {
        "viewer_tokens": [token(u) for u in people[:viewers]],
        "watcher_tokens": [token(u) for u in people[viewers : viewers + watchers]],
        "accounts": len(people),
    }


# --- Processes ----------------------------------------------------------------------------


def gunicorn_workers() -> int:
    """deploy/README.md: ``-w $((2 * CPUS))``."""
    return 2 * cpus()


def start_gunicorn(log_dir: Path, *, timeout: int = 30) -> tuple[Proc, int]:
    port = free_port()
    args = [str(BIN / "gunicorn"), "config.wsgi:application"]
    if GUNICORN_CONFIG.exists():
        # The production settings file (Prometheus multiprocess housekeeping).
        args += ["-c", str(GUNICORN_CONFIG)]
    args += [
        "-w",
        str(gunicorn_workers()),
        "-k",
        "sync",
        "-b",
        f"127.0.0.1:{port}",
        "--timeout",
        str(timeout),
        "--log-level",
        "warning",
    ]
    return Proc(args, log_dir / "gunicorn.log"), port


def start_uvicorn(log_dir: Path) -> tuple[Proc, int]:
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
        "--no-access-log",
    ]
    return Proc(args, log_dir / "uvicorn.log"), port


@dataclass
class Worker:
    queue: str
    hostname: str
    proc: Proc


def start_worker(log_dir: Path, queue: str) -> Worker:
    """One worker process for one queue, as deploy/README.md runs them: a GPU worker
    (``-Q gpu``) and a CPU worker (``-Q cpu``). One process on both queues would serve them in
    the listed order (the broker's ``queue_order_strategy`` is ``priority``), so while clips
    keep arriving it renders and never post-processes: no job would finish."""
    hostname = f"load-{queue}-{os.getpid()}@{socket.gethostname()}"
    args = [
        str(BIN / "celery"),
        "-A",
        "config",
        "worker",
        "-Q",
        queue,
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
    return Worker(queue, hostname, Proc(args, log_dir / f"worker-{queue}.log"))


def wait_listening(proc: Proc, port: int, what: str, timeout: float = 90) -> None:
    def up():
        proc.check_alive(what)
        return listening(port)

    wait_for(up, timeout, f"{what} to listen", interval=0.1)


def wait_worker(worker: Worker, timeout: float = 120) -> None:
    from config.celery import app

    def ready():
        worker.proc.check_alive(f"the {worker.queue} worker")
        return bool(app.control.ping(destination=[worker.hostname], timeout=0.5))

    wait_for(ready, timeout, f"the {worker.queue} worker to answer a ping", interval=0.3)


def stop_workers(workers: list[Worker]) -> None:
    """Warm shutdown waits for the task in hand, which may be a whole render; after a grace
    period a cold shutdown (SIGQUIT) ends it and its pool child, then SIGKILL. All workers
    at once, so the graces do not add up."""
    for sig, grace in ((signal.SIGTERM, 8), (signal.SIGQUIT, 5)):
        running = [w.proc.popen for w in workers if w.proc.popen.poll() is None]
        for popen in running:
            popen.send_signal(sig)
        deadline = time.monotonic() + grace
        for popen in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=max(0.1, deadline - time.monotonic()))
    for worker in workers:
        worker.proc.stop(timeout=1)


# No proxy: a developer's HTTP_PROXY must not swallow a request to this machine.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(
    url: str,
    *,
    token: str | None = None,
    method: str = "GET",
    body: dict | None = None,
    timeout: float = 10,
) -> tuple[int, str]:
    """(status, body) of a request; status 0 with the reason as body when nothing answered."""
    data = json.dumps(body).encode() if body is not None else None
    # A loopback URL built here.
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with _DIRECT.open(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def wait_ready(base: str, timeout: float = 300) -> None:
    """Each gunicorn worker imports the URL configuration (views, torch) on its first
    request. On a saturated machine that can take longer than gunicorn's 30 s worker timeout
    (kept, as production runs it): the worker is restarted and the next one finds the files
    cached, hence the long wait."""
    wait_for(
        lambda: fetch(f"{base}/readyz", timeout=60)[0] == 200,
        timeout,
        f"{base}/readyz",
        interval=0.5,
    )


def generation_body(index: int) -> dict:
    """A ``POST /api/v1/generations`` body with the ``index``-th prompt."""
    prompts = GENERATION["prompts"]
    return {
        "prompt": prompts[index % len(prompts)],
        "model": GENERATION["model"],
        "size": GENERATION["size"],
        "seconds": GENERATION["seconds"],
    }


def warm_up_job_submit():
    """One small job for the worker before the load, so the completion times the load
    measures are not the first job's (engine and pipeline start-up). Returns the job."""
    from accounts.models import User
    from generation.services import job_create, job_spec_build

    user = User.objects.filter(handle__startswith="bench").order_by("-handle").first()
    body = generation_body(0)
    spec = job_spec_build(
        prompt=body["prompt"],
        model=body["model"],
        seconds=body["seconds"],
        size=body["size"],
        native=True,
        allowed_seconds=None,
    )
    (job,) = job_create(user=user, spec=spec)
    return job


def warm_up_job_wait(job, *, timeout: float) -> str:
    """The job's outcome, or how far it got in ``timeout`` seconds."""
    from generation.models import TERMINAL

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in TERMINAL:
            return job.status
        time.sleep(0.2)
    return f"still {job.status} after {timeout:.0f} s"
