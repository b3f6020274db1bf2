"""Montage's clients under load: people scrolling and interacting, and creators waiting on a
WebSocket for their clip.

Run by ``python -m bench.load``, which starts the servers, seeds them and writes the file
named by ``MONTAGE_LOAD_CONFIG`` (tokens, WebSocket URL, route patterns, request cap). Locust
runs in a process of its own: it monkey-patches the standard library with gevent.

The mix (weights of :class:`Viewer`'s tasks; each task is one user action, 1-3 requests):

====================  ======  ===============================================================
action                weight  requests
====================  ======  ===============================================================
For You page              80  ``GET /api/v1/feed/for_you`` (a new ranked session every 8
                              pages, else the next page of the session by cursor)
watch a clip              44  ``POST /api/v1/posts/{id}/views`` with the watch time; a clip
                              watched to its end counts as completed
Following page            30  ``GET /api/v1/feed/following`` (paging by cursor, from the top
                              every 5 pages)
open a post               20  ``GET /api/v1/posts/{id}`` then its comments
like / unlike             16  ``POST`` or ``DELETE /api/v1/posts/{id}/like`` (toggles)
comment                    8  ``POST /api/v1/posts/{id}/comments``
generate                   1  ``POST /api/v1/generations`` (previs, 512x512, 1 s), then
                              ``GET /api/v1/generations/{id}`` every 2 s until it is done
                              (reported as ``POLL generation done (polling)``)
====================  ======  ===============================================================

Think time between actions: 0.5-2.5 s (a scrolling viewer decides fast). Feeds come first
in the mix because they are what every opened app asks for. One action in 200 is a
generation: on two shared cores one worker finishes a few small clips a minute, and at 1 in
100 twenty users already queued them faster than that.

:class:`ProgressWatcher` (a fixed number, default 1): opens ``/ws/`` with its JWT in
``Authorization`` (as mobile clients do; no ``Origin``), submits a generation, and waits for
that job's terminal event on the socket. It reports, as locust requests of type ``WS``: the
handshake until the ``ready`` event, submit to the first ``job.progress`` event, and submit to
``job.completed`` (a ``job.failed``, a cancellation or no event in time is a failure).

Every request is named by its route pattern (``bench.load.routes``). When the requests
counted reach the cap (``max_requests``), the run stops as if its run time had ended.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import time
from pathlib import Path

import gevent
import websocket
from locust import FastHttpUser, between, events, task

from bench.load.routes import compile_routes, route_name

CONFIG = json.loads(Path(os.environ["MONTAGE_LOAD_CONFIG"]).read_text())
ROUTES = compile_routes(CONFIG["routes"])
GENERATION = CONFIG["generation"]
JOB_TIMEOUT_S = float(CONFIG.get("job_timeout_s", 120))
POLL_EVERY_S = 2.0
TERMINAL = {"completed", "failed", "cancelled", "blocked"}
COMMENTS = ["love this", "how did you make it?", "the ending!", "again please", "so smooth"]

_viewer_tokens = itertools.cycle(CONFIG["viewer_tokens"])
_watcher_tokens = itertools.cycle(CONFIG["watcher_tokens"] or CONFIG["viewer_tokens"])
_counted = 0
_environment = None
logger = logging.getLogger("montage.load")


@events.init.add_listener
def _remember_environment(environment, **kwargs):
    global _environment
    _environment = environment


@events.request.add_listener
def _enforce_cap(**kwargs):
    """The hard cap on requests: a bound on the run that holds whatever the rate turns out
    to be."""
    global _counted
    _counted += 1
    if _counted == CONFIG["max_requests"] and _environment and _environment.runner:
        logger.warning("request cap %s reached; stopping", CONFIG["max_requests"])
        # Not from inside this handler: quitting kills the users, possibly the caller.
        gevent.spawn(_environment.runner.quit)


@events.test_stop.add_listener
def _let_csv_catch_up(**kwargs):
    # Locust rewrites its CSV files once a second and does not rewrite them at exit; the
    # users are stopped by now, so one more pass records the requests of the last second.
    gevent.sleep(1.5)


def _fire(name: str, started: float, *, length: int = 0, exception=None) -> None:
    events.request.fire(
        request_type="WS",
        name=name,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=length,
        exception=exception,
        context={},
    )


def _generation_body() -> dict:
    return {
        "prompt": random.choice(GENERATION["prompts"]),
        "model": GENERATION["model"],
        "size": GENERATION["size"],
        "seconds": GENERATION["seconds"],
    }


class MontageUser(FastHttpUser):
    abstract = True
    token: str = ""

    def call(self, method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.client.request(
            method, path, name=route_name(path, ROUTES), headers=headers, **kwargs
        )

    def create_job(self) -> str | None:
        """Submits a generation; its job id, or None (the failure is already recorded)."""
        with self.call(
            "POST", "/api/v1/generations", json=_generation_body(), catch_response=True
        ) as response:
            try:
                return response.json()["data"][0]["id"]
            except (ValueError, KeyError, IndexError, TypeError):
                response.failure(f"no job in the answer ({response.status_code})")
                return None


class Viewer(MontageUser):
    wait_time = between(0.5, 2.5)

    def on_start(self):
        self.token = next(_viewer_tokens)
        self.for_you_cursor = None
        self.for_you_pages = 0
        self.following_cursor = None
        self.following_pages = 0
        self.seen: list[dict] = []  # recent posts: id, duration_s, liked

    def _remember(self, response) -> None:
        try:
            items = response.json()["data"]
        except (ValueError, KeyError, TypeError):
            return
        for item in items:
            post = item.get("post") if item.get("type") == "post" else None
            if post:
                self.seen.append(
                    {
                        "id": post["id"],
                        "duration_s": post.get("duration_s") or 4,
                        "liked": post.get("viewer", {}).get("liked", False),
                    }
                )
        del self.seen[:-60]

    def _next_cursor(self, response) -> str | None:
        try:
            return response.json().get("next_cursor")
        except (ValueError, AttributeError):
            return None

    def _post(self) -> dict | None:
        if not self.seen:
            self.for_you()
        return random.choice(self.seen) if self.seen else None

    @task(80)
    def for_you(self):
        if self.for_you_pages % 8 == 0:
            self.for_you_cursor = None
        path = "/api/v1/feed/for_you"
        if self.for_you_cursor:
            path += f"?cursor={self.for_you_cursor}"
        response = self.call("GET", path)
        self._remember(response)
        self.for_you_cursor = self._next_cursor(response)
        self.for_you_pages += 1

    @task(44)
    def watch(self):
        post = self._post()
        if post is None:
            return
        length_ms = int(post["duration_s"] * 1000)
        watch_ms = random.randint(300, length_ms)
        completed = watch_ms >= length_ms * 0.95
        self.call(
            "POST",
            f"/api/v1/posts/{post['id']}/views",
            json={"watch_ms": watch_ms, "completed": completed},
        )

    @task(30)
    def following(self):
        if self.following_pages % 5 == 0:
            self.following_cursor = None
        path = "/api/v1/feed/following"
        if self.following_cursor:
            path += f"?cursor={self.following_cursor}"
        response = self.call("GET", path)
        self._remember(response)
        self.following_cursor = self._next_cursor(response)
        self.following_pages += 1

    @task(20)
    def open_post(self):
        post = self._post()
        if post is None:
            return
        self.call("GET", f"/api/v1/posts/{post['id']}")
        self.call("GET", f"/api/v1/posts/{post['id']}/comments")

    @task(16)
    def like_toggle(self):
        post = self._post()
        if post is None:
            return
        method = "DELETE" if post["liked"] else "POST"
        response = self.call(method, f"/api/v1/posts/{post['id']}/like")
        if response.status_code == 200:
            post["liked"] = not post["liked"]

    @task(8)
    def comment(self):
        post = self._post()
        if post is None:
            return
        self.call(
            "POST", f"/api/v1/posts/{post['id']}/comments", json={"body": random.choice(COMMENTS)}
        )

    @task(1)
    def generate(self):
        started = time.perf_counter()
        job_id = self.create_job()
        if job_id is None:
            return
        deadline = time.monotonic() + JOB_TIMEOUT_S
        status = None
        while status not in TERMINAL and time.monotonic() < deadline:
            gevent.sleep(POLL_EVERY_S)
            response = self.call("GET", f"/api/v1/generations/{job_id}")
            try:
                status = response.json()["status"]
            except (ValueError, KeyError, TypeError):
                continue
        error = None
        if status not in TERMINAL:
            error = TimeoutError(f"still {status} after {JOB_TIMEOUT_S:.0f} s")
        elif status != "completed":
            error = RuntimeError(f"job {status}")
        events.request.fire(
            request_type="POLL",
            name="generation done (polling)",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )


class ProgressWatcher(MontageUser):
    fixed_count = int(CONFIG.get("watchers", 1))
    # A fixed count of 0 would make locust spawn watchers by weight instead: none at all.
    abstract = fixed_count == 0
    wait_time = between(2, 5)

    def on_start(self):
        self.token = next(_watcher_tokens)
        self.socket = None
        self._connect()

    def on_stop(self):
        if self.socket is not None:
            self.socket.close()
            self.socket = None

    def _connect(self) -> None:
        started = time.perf_counter()
        try:
            sock = websocket.create_connection(
                CONFIG["ws_url"],
                header=[f"Authorization: Bearer {self.token}"],
                suppress_origin=True,
                timeout=15,
            )
            first = json.loads(sock.recv())
            if first.get("event") != "ready":
                sock.close()
                raise RuntimeError(f"first event was {first!r}")
        except Exception as exc:
            _fire("/ws/ connect -> ready", started, exception=exc)
            self.socket = None
            return
        _fire("/ws/ connect -> ready", started)
        self.socket = sock

    @task
    def generate_and_wait(self):
        if self.socket is None:
            self._connect()
            if self.socket is None:
                return
        started = time.perf_counter()
        job_id = self.create_job()
        if job_id is None:
            return
        deadline = time.monotonic() + JOB_TIMEOUT_S
        progressed = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _fire(
                    "job.completed (submit -> event)",
                    started,
                    exception=TimeoutError(f"no terminal event in {JOB_TIMEOUT_S:.0f} s"),
                )
                return
            try:
                self.socket.settimeout(remaining)
                raw = self.socket.recv()
                message = json.loads(raw)
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError, ValueError) as exc:
                _fire("job.completed (submit -> event)", started, exception=exc)
                self.on_stop()
                return
            data = message.get("data") or {}
            if data.get("id") != job_id:
                continue
            event = message.get("event")
            if event == "job.progress" and not progressed:
                progressed = True
                _fire("job.progress first (submit -> event)", started, length=len(raw))
            status = data.get("status")
            if event == "job.completed":
                _fire("job.completed (submit -> event)", started, length=len(raw))
                return
            if event == "job.failed" or status in TERMINAL:
                error = RuntimeError(f"{event}: {status} {data.get('error')}")
                _fire("job.completed (submit -> event)", started, exception=error)
                return
