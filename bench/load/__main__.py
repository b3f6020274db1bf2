"""``python -m bench.load``: a bounded load test of the whole system on loopback, one report.

Starts, on 127.0.0.1 only, the process types of deploy/README.md: gunicorn for REST as
production runs it (sync workers, 2 per CPU), uvicorn for ``/ws/``, and a GPU and a CPU Celery
worker (``-Q gpu`` and ``-Q cpu``, one process each) with the previs engine, against a database
of their own (``bench.load.stack``). Seeds users, posts, likes, views and follows, gives each
simulated client a JWT, warms every web worker and runs one small job, then runs locust
headless (``bench/load/locustfile.py``: the mix and its weights) for ``--run-time`` seconds or
until ``--max-requests``, whichever comes first.

Prints, per route: requests, throughput, p50 and p99 latency, failures; the totals; the load
average before and after; and what ``/metrics`` (scraped before, during and after the load)
says changed. Locust's CSV files, the scrapes, the report and every server's log are kept in
``--out``. Every process started here is stopped at the end, on failure and on Ctrl-C too.

The defaults (20 users for 60 s, 3,000 posts) take about three minutes in all on an idle
two-core machine; on a busy one, start-up and seeding take longer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import BIN, ROOT, Proc, cpus
from bench.load import report, stack

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


class Stop(Exception):
    """Ctrl-C or SIGTERM arrived; everything started so far is shut down."""


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--users", type=int, default=20, help="simulated clients (default 20)")
    parser.add_argument("--spawn-rate", type=float, default=5, help="users started per second")
    parser.add_argument("--run-time", type=int, default=60, help="seconds of load (default 60)")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=20_000,
        help="stop the load once this many requests were made (default 20,000)",
    )
    parser.add_argument("--seed-posts", type=int, default=3000, help="posts to seed")
    parser.add_argument(
        "--seed-users", type=int, default=300, help="accounts to seed (at least --users)"
    )
    parser.add_argument(
        "--ws-users", type=int, default=1, help="of --users, how many wait on the WebSocket"
    )
    parser.add_argument(
        "--stop-timeout", type=int, default=10, help="seconds users get to finish at the end"
    )
    parser.add_argument(
        "--gunicorn-timeout",
        type=int,
        default=30,
        help="gunicorn's worker timeout in seconds (default 30, gunicorn's and production's)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="where CSVs, scrapes, logs and the report go"
    )
    args = parser.parse_args(argv)
    if args.users < 1 or args.run_time < 1 or args.max_requests < 1:
        parser.error("--users, --run-time and --max-requests must be positive")
    if not 0 <= args.ws_users < args.users:
        parser.error("--ws-users must be at least 0 and fewer than --users")
    if args.seed_posts < 100:
        parser.error("--seed-posts must be at least 100 (a feed needs something to rank)")
    return args


def _log(message: str) -> None:
    print(f"[load] {message}", flush=True)


def _warm_http(base: str, token: str, workers: int) -> None:
    """First requests to each gunicorn worker load URL routing, serializers and the models
    the request path uses (prompt screening's text model); that start-up is not what a client
    sees later. A sync worker busy loading takes no other connection, so clients in parallel
    land on different workers; only as many as there are CPUs, because workers loading all at
    once on a busy machine overrun gunicorn's worker timeout and are restarted cold. The
    warm-up generations are cancelled at once, so they cost the workers little."""
    clients = max(1, min(workers, cpus()))
    rounds = -(-2 * workers // clients)

    def client() -> None:
        for _ in range(rounds):
            for path in ("/api/v1/me", "/api/v1/feed/for_you", "/api/v1/feed/following"):
                stack.fetch(base + path, token=token, timeout=90)
            status, body = stack.fetch(
                base + "/api/v1/generations",
                token=token,
                method="POST",
                body=stack.generation_body(0),
                timeout=90,
            )
            if status == 201:
                job_id = json.loads(body)["data"][0]["id"]
                stack.fetch(
                    f"{base}/api/v1/generations/{job_id}/cancel", token=token, method="POST"
                )

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _scrape(base: str, token: str, path: Path) -> report.Scrape:
    status, body = stack.fetch(f"{base}/metrics", token=token, timeout=15)
    path.write_text(body)
    if status != 200:
        reason = body.strip().splitlines()[0][:100] if body.strip() else "empty"
        return report.parse_scrape(None, error=f"HTTP {status}: {reason}")
    return report.parse_scrape(body)


class LoadSampler:
    """The 1-minute load average every few seconds while the load runs: its peak says more
    than two snapshots on a machine shared with others."""

    def __init__(self, every: float = 5.0):
        self.peak = 0.0
        self._every = every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(self._every):
            self.peak = max(self.peak, os.getloadavg()[0])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


def _run_locust(args, host: str, config_path: Path, out: Path) -> int:
    command = [
        str(BIN / "locust"),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        f"{args.run_time}s",
        "--stop-timeout",
        str(args.stop_timeout),
        "--csv",
        str(out / "locust"),
        "--host",
        host,
        "--only-summary",
    ]
    env = {
        **os.environ,
        "MONTAGE_LOAD_CONFIG": str(config_path),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = Proc(command, out / "logs" / "locust.log", env=env)
    # Bounded even if locust itself hangs: spawning, the run, the stop timeout, and a margin.
    limit = args.users / args.spawn_rate + args.run_time + args.stop_timeout + 60
    try:
        return proc.popen.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        _log(f"locust still running after {limit:.0f} s; stopping it")
        return -1
    finally:
        proc.stop(timeout=15)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    out = (args.out or Path(tempfile.mkdtemp(prefix="montage-load-report-"))).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)

    def _on_signal(signum, frame):
        raise Stop

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    env = stack.configure()
    servers: list[Proc] = []
    workers: list[stack.Worker] = []
    database = False
    exit_code = 0
    try:
        started = time.monotonic()
        _log(f"database {env.database_name}; output in {out}")
        database = True  # set first: a migration that fails half-way still leaves one to drop
        stack.create_database(env)
        _log(f"migrated in {time.monotonic() - started:.0f} s")

        # The servers start (Django, torch, the engine) while the seed is written: only the
        # first requests need the data, and the readiness wait comes after the seed.
        log_dir = out / "logs"
        rest, rest_port = stack.start_gunicorn(log_dir, timeout=args.gunicorn_timeout)
        servers.append(rest)
        ws, ws_port = stack.start_uvicorn(log_dir)
        servers.append(ws)
        for queue in ("gpu", "cpu"):
            workers.append(stack.start_worker(log_dir, queue))
        rest_base, ws_base = f"http://127.0.0.1:{rest_port}", f"http://127.0.0.1:{ws_port}"

        seed_started = time.monotonic()
        seeded = stack.seed(
            users=max(args.seed_users, args.users),
            posts=args.seed_posts,
            viewers=args.users - args.ws_users,
            watchers=args.ws_users,
            token_ttl_s=args.run_time + 3600,
        )
        seeded_text = (
            f"{args.seed_posts:,} posts by {seeded['accounts']:,} accounts, "
            f"{args.seed_posts * 5:,} likes and views, {seeded['accounts'] * 20:,} follows "
            f"(in {time.monotonic() - seed_started:.0f} s)"
        )
        _log(f"seeded {seeded_text}")

        stack.wait_listening(rest, rest_port, "gunicorn")
        stack.wait_listening(ws, ws_port, "uvicorn")
        stack.wait_ready(rest_base)
        for worker in workers:
            stack.wait_worker(worker)
        _log(f"servers up: REST {rest_base}, WebSocket {ws_base}/ws/, gpu and cpu workers")

        from bench.load.routes import django_route_templates

        config_path = env.scratch / "load.json"
        config_path.write_text(
            json.dumps(
                {
                    "viewer_tokens": seeded["viewer_tokens"],
                    "watcher_tokens": seeded["watcher_tokens"],
                    "watchers": args.ws_users,
                    "ws_url": f"ws://127.0.0.1:{ws_port}/ws/",
                    "max_requests": args.max_requests,
                    "routes": django_route_templates(),
                    "generation": stack.GENERATION,
                    "job_timeout_s": max(60, args.run_time * 2),
                }
            )
        )
        warm_started = time.monotonic()
        warm_job = stack.warm_up_job_submit()
        _warm_http(rest_base, seeded["viewer_tokens"][0], stack.gunicorn_workers())
        outcome = stack.warm_up_job_wait(warm_job, timeout=150)
        _log(f"warm-up: HTTP and one job ({outcome}) in {time.monotonic() - warm_started:.0f} s")

        def scrape_all(when: str) -> dict[str, report.Scrape]:
            return {
                "REST": _scrape(rest_base, env.metrics_token, out / f"metrics_rest_{when}.txt"),
                "WebSocket": _scrape(ws_base, env.metrics_token, out / f"metrics_ws_{when}.txt"),
            }

        scrapes_before = scrape_all("before")
        restarts_before = rest.output().count("WORKER TIMEOUT")
        scrapes_during: dict[str, report.Scrape] = {}
        load_before = os.getloadavg()
        _log(
            f"locust: {args.users} users ({args.ws_users} on the WebSocket) for "
            f"{args.run_time} s, cap {args.max_requests:,} requests"
        )
        # Gauges (queue depth, open sockets) are back to rest once the load is over: one
        # scrape well into the run, when every user is running.
        during = threading.Timer(
            args.users / args.spawn_rate + args.run_time * 0.6,
            lambda: scrapes_during.update(scrape_all("during")),
        )
        during.daemon = True
        with LoadSampler() as sampler:
            during.start()
            try:
                code = _run_locust(args, rest_base, config_path, out)
            finally:
                during.cancel()
        during.join(timeout=30)
        load_after = os.getloadavg()
        scrapes_after = scrape_all("after")

        stats_csv = out / "locust_stats.csv"
        if not stats_csv.exists():
            raise RuntimeError(
                f"locust wrote no statistics (exit {code}):\n"
                + (out / "logs" / "locust.log").read_text(errors="replace")[-3000:]
            )
        rows, total = report.read_locust_stats(stats_csv.read_text())
        failures_csv = out / "locust_failures.csv"
        failures = report.read_locust_failures(
            failures_csv.read_text() if failures_csv.exists() else ""
        )
        restarts = rest.output().count("WORKER TIMEOUT") - restarts_before
        notes = [""]
        if restarts or restarts_before:
            notes.append(
                f"gunicorn killed {restarts} worker(s) during the load and {restarts_before} "
                f"while warming up, past its {args.gunicorn_timeout} s worker timeout "
                "(logs/gunicorn.log)."
            )
        notes += [
            f"Peak 1-minute load average during the load: {sampler.peak:.2f}; locust exit "
            f"{code}; warm-up job {outcome}; total wall time "
            f"{time.monotonic() - started:.0f} s.",
            f"Data: database {env.database_name} (dropped now), Redis db {env.redis_db}. "
            f"Files: {out}",
        ]
        facts = report.RunFacts(
            users=args.users,
            spawn_rate=args.spawn_rate,
            run_time_s=args.run_time,
            cpus=cpus(),
            load_before=load_before,
            load_after=load_after,
            gunicorn_workers=stack.gunicorn_workers(),
            gunicorn_timeout_s=args.gunicorn_timeout,
            max_requests=args.max_requests,
            seeded=seeded_text,
            notes=notes,
        )
        scrapes = {
            name: report.Scrapes(
                before=scrapes_before[name],
                after=scrapes_after[name],
                during=scrapes_during.get(name),
            )
            for name in scrapes_before
        }
        text = report.render(rows, total, failures, facts, scrapes)
        (out / "report.txt").write_text(text + "\n")
        print("\n" + text, flush=True)
    except Stop:
        _log("interrupted; stopping everything")
        exit_code = 130
    except Exception as exc:
        print(f"[load] failed: {exc}", file=sys.stderr, flush=True)
        for proc in [*servers, *(worker.proc for worker in workers)]:
            if proc.popen.poll() is not None:
                print(f"--- {proc.log_path.name}:\n{proc.output()[-2000:]}", file=sys.stderr)
        exit_code = 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and strand servers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopping = time.monotonic()
        for proc in servers:
            if proc.popen.poll() is None:
                proc.popen.terminate()  # all at once; waited for below
        stack.stop_workers(workers)
        for proc in servers:
            proc.stop()
        if database:
            stack.drop_database(env)  # and the scratch directory
        else:
            shutil.rmtree(env.scratch, ignore_errors=True)
        _log(
            f"stopped every process started here and dropped {env.database_name} "
            f"({time.monotonic() - stopping:.0f} s)"
        )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
