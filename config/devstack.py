"""``make run``: the whole service on one machine, stopped by one Ctrl-C.

Starts the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set, migrates,
seeds the demo, then runs the ASGI server (HTTP + WebSockets), a Celery worker on both queues
and Celery beat, and prints where to look.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from config import embedded

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True)


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    started = embedded.ensure_environment()
    for key, value in started.items():
        print(f"embedded {key}={value}")
    _run("migrate", "--noinput")
    _run("seed_demo")

    beat_schedule = embedded.data_dir() / "celerybeat-schedule"
    children = [
        subprocess.Popen(
            [
                str(BIN / "uvicorn"),
                "config.asgi:application",
                "--host",
                host,
                "--port",
                port,
                "--lifespan",
                "off",
            ],
            cwd=ROOT,
        ),
        subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "-Q",
                "gpu,cpu",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--hostname",
                "montage-dev@%h",
            ],
            cwd=ROOT,
        ),
        subprocess.Popen(
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "beat",
                "--loglevel",
                "WARNING",
                "--schedule",
                str(beat_schedule),
            ],
            cwd=ROOT,
        ),
    ]
    base = f"http://{host}:{port}"
    print(
        "\nMontage is starting:\n"
        f"  API docs (Swagger UI)  {base}/api/docs/\n"
        f"  OpenAPI schema         {base}/api/schema/\n"
        f"  readiness              {base}/readyz\n"
        f"  WebSocket              ws://{host}:{port}/ws/?token=<api key or JWT>\n"
        f"  admin                  {base}/admin/  (createsuperuser first)\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )

    stopping = False

    def _stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    exit_code = 0
    while not stopping:
        for child in children:
            if child.poll() is not None:
                print(f"{child.args[0]} exited with {child.returncode}; stopping", flush=True)
                exit_code = child.returncode or 1
                stopping = True
        time.sleep(0.3)

    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    if started:
        print("stopped embedded servers: " + ", ".join(embedded.stop()), flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
