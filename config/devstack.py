"""``make run``: the whole service on one machine, stopped by one Ctrl-C.

Starts the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set, migrates,
seeds the demo, then runs the ASGI server (HTTP + WebSockets), a Celery worker per queue
and Celery beat, and prints where to look once /readyz answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from config import embedded

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
READY_TIMEOUT = 120


class Stop(Exception):
    """Ctrl-C or SIGTERM arrived; everything started so far is shut down."""


def _run(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True)


def _start_children(children: list[subprocess.Popen], host: str, port: str) -> None:
    beat_schedule = embedded.data_dir() / "celerybeat-schedule"
    uvicorn = [str(BIN / "uvicorn"), "config.asgi:application", "--lifespan", "off"]
    celery = [str(BIN / "celery"), "-A", "config"]
    commands = [
        [*uvicorn, "--host", host, "--port", port],
        # One worker per queue, as deployments run them: a single worker on both queues takes
        # `gpu` first (priority order) and leaves post-processing waiting while renders arrive.
        [*celery, "worker", "-Q", "gpu", "-c", "1", "-l", "INFO", "-n", "montage-gpu@%h"],
        [*celery, "worker", "-Q", "cpu", "-c", "1", "-l", "INFO", "-n", "montage-cpu@%h"],
        [*celery, "beat", "--loglevel", "WARNING", "--schedule", str(beat_schedule)],
    ]
    for command in commands:
        # Appended one by one: a Ctrl-C between two starts still stops the first.
        children.append(subprocess.Popen(command, cwd=ROOT))


def _exited(children: list[subprocess.Popen]) -> subprocess.Popen | None:
    return next((child for child in children if child.poll() is not None), None)


# No proxy: a developer's HTTP_PROXY must not swallow a request to this machine.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _ready(base: str) -> bool:
    try:
        with _DIRECT.open(f"{base}/readyz", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop_children(children: list[subprocess.Popen]) -> None:
    # Ctrl-C in a terminal reaches the whole process group, children included; SIGTERM covers a
    # `kill` of this process alone. Both mean a warm shutdown to Celery and uvicorn.
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    base = f"http://{host}:{port}"
    began = time.monotonic()

    def _on_signal(signum, frame):
        raise Stop

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    started: dict[str, str] = {}
    children: list[subprocess.Popen] = []
    exit_code = 0
    try:
        # Inside the try: a server started here must be stopped even when a later step (a
        # failing migration, an early Ctrl-C) ends the run.
        started = embedded.ensure_environment()
        for key, value in started.items():
            print(f"embedded {key}={value}", flush=True)
        _run("migrate", "--noinput")
        _run("seed_demo")
        _start_children(children, host, port)

        while not _ready(base):
            if (child := _exited(children)) is not None:
                raise SystemExit(f"{child.args[0]} exited with {child.returncode} while starting")
            if time.monotonic() - began > READY_TIMEOUT:
                raise SystemExit(f"{base}/readyz did not answer 200 within {READY_TIMEOUT} s")
            time.sleep(0.2)
        print(
            f"\nMontage is ready ({time.monotonic() - began:.1f} s):\n"
            f"  API docs (Swagger UI)  {base}/api/docs/\n"
            f"  OpenAPI schema         {base}/api/schema/\n"
            f"  readiness              {base}/readyz\n"
            f"  WebSocket              ws://{host}:{port}/ws/?token=<api key or JWT>\n"
            f"  admin                  {base}/admin/  (createsuperuser first)\n"
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        while (child := _exited(children)) is None:
            time.sleep(0.3)
        print(f"{child.args[0]} exited with {child.returncode}; stopping", flush=True)
        exit_code = child.returncode or 1
    except Stop:
        print("\nstopping Montage...", flush=True)
    except (SystemExit, subprocess.CalledProcessError) as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        exit_code = 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and strand servers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_children(children)
        if started:
            stopped = embedded.stop()
            print("stopped embedded servers: " + (", ".join(stopped) or "none"), flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
