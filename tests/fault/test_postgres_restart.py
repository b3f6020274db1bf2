"""PostgreSQL stops (``pg_ctl stop -m fast``: sessions cut, transactions aborted) under feed
reads and writes (likes, comments, publishing), and starts again.

While it is down every database-backed route answers 503 in the error shape with Retry-After,
at once; /readyz reports not ready and /healthz stays 200. Once it is back the same server
processes answer again by themselves (persistent connections, health-checked). No write that
was answered 2xx is lost, none happened twice, and none half-happened: counters equal their
rows and a clip is published exactly when its post exists. A write answered 503 while the
database was down did not happen at all.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from tests.fault import procs
from tests.fault.checks import assert_error_shape, report
from tests.fixtures import ROOT, wait_for

pytestmark = [pytest.mark.fault, pytest.mark.slow]

USERS, POSTS, DRAFTS = 6, 6, 7
# Requests of each kind a phase may send: the like pairs and the drafts are finite.
BUDGET = {"read": 30, "like": 10, "comment": 8, "publish": 2}
# What each phase must see before the next: successes before the stop and after the restart,
# 503s while down.
NEEDED = {"read": 3, "like": 2, "comment": 2, "publish": 1}
OK_STATUS = {"read": 200, "like": 200, "comment": 201, "publish": 201}
DOWN_LATENCY_LIMIT = 5.0


@dataclass
class Call:
    kind: str
    what: tuple
    phase: str
    started: float
    ended: float
    response: httpx.Response | None
    error: str = ""

    @property
    def status(self) -> int | None:
        return self.response.status_code if self.response is not None else None


class Traffic:
    """Four clients (a reader, a liker, a commenter, a publisher) in threads, each spending
    its budget per phase, so every phase sees every kind of request."""

    def __init__(self, base: str, seed: dict):
        self.base = base
        self.seed = seed
        self.phase = "before"
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        users, posts = seed["users"], seed["posts"]
        self.likes = iter([(u, p) for p in posts for u in users])
        self.drafts = iter(seed["drafts"])
        self.threads = [
            threading.Thread(target=self._run, args=(kind,), name=f"traffic-{kind}", daemon=True)
            for kind in BUDGET
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def set_phase(self, phase: str) -> None:
        with self.lock:
            self.phase = phase

    def count(self, kind: str, phase: str, *, status: int | None = None, after=0.0) -> int:
        with self.lock:
            return sum(
                1
                for c in self.calls
                if c.kind == kind
                and c.phase == phase
                and c.started >= after
                and (status is None or c.status == status)
            )

    def _request(self, client: httpx.Client, kind: str, rotation) -> tuple[tuple, httpx.Response]:
        if kind == "read":
            user, path = next(rotation)
            return (path,), client.get(path, headers=_auth(user))
        if kind == "like":
            user, post = next(self.likes)
            response = client.post(f"/api/v1/posts/{post['id']}/like", headers=_auth(user))
            return (user["id"], post["pk"]), response
        if kind == "comment":
            user, post = next(rotation)
            body = f"still here {uuid.uuid4().hex}"
            response = client.post(
                f"/api/v1/posts/{post['id']}/comments", json={"body": body}, headers=_auth(user)
            )
            return (body, post["pk"]), response
        item = next(self.drafts)
        response = client.post(
            "/api/v1/posts",
            json={"video_id": item["video_id"], "caption": "from the fault test"},
            headers=_auth(self.seed["users"][item["owner"]]),
        )
        return (item["clip_pk"],), response

    def _run(self, kind: str) -> None:
        users, posts = self.seed["users"], self.seed["posts"]
        paths = ["/api/v1/feed/following", "/api/v1/feed/for_you"]
        paths += [f"/api/v1/posts/{p['id']}" for p in posts[:2]]
        paths += [f"/api/v1/posts/{p['id']}/comments" for p in posts[:2]]
        rotation = {
            "read": zip(itertools.cycle(users), itertools.cycle(paths), strict=False),
            "comment": zip(itertools.cycle(users), itertools.cycle(posts), strict=False),
        }.get(kind)
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.stop.is_set():
                with self.lock:
                    phase = self.phase
                    spent = sum(1 for c in self.calls if c.kind == kind and c.phase == phase)
                if spent >= BUDGET[kind]:
                    time.sleep(0.05)
                    continue
                started = time.monotonic()
                try:
                    what, response = self._request(client, kind, rotation)
                    error = ""
                except StopIteration:
                    return
                except httpx.HTTPError as exc:
                    what, response, error = (), None, f"{type(exc).__name__}: {exc}"
                call = Call(kind, what, phase, started, time.monotonic(), response, error)
                with self.lock:
                    self.calls.append(call)
                time.sleep(0.1)


def _auth(user: dict) -> dict:
    return {"Authorization": f"Bearer {user['key']}"}


@pytest.fixture
def cluster():
    built = procs.PostgresCluster()
    try:
        built.init()
        built.start()
        built.create_database()
        yield built
    finally:
        built.destroy()


def _publish_posts(base: str, seed: dict) -> list[dict]:
    """Publishes the first user's drafts through the API: the posts the traffic reads, likes
    and comments on (this also loads the server's text model before the clock starts)."""
    posts = []
    with httpx.Client(base_url=base, timeout=120) as client:
        for item in seed["post_drafts"]:
            response = client.post(
                "/api/v1/posts",
                json={"video_id": item["video_id"], "caption": "seeded"},
                headers=_auth(seed["users"][item["owner"]]),
            )
            assert response.status_code == 201, response.text
            public_id = response.json()["id"]
            posts.append({"id": public_id, "pk": str(uuid.UUID(public_id.removeprefix("post_")))})
    return posts


def _manage(env: dict, *args: str, timeout: float = 180) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def _wait_phase(traffic: Traffic, phase: str, status_of, after: float, timeout: float) -> None:
    def seen() -> bool:
        return all(
            traffic.count(kind, phase, status=status_of(kind), after=after) >= needed
            for kind, needed in NEEDED.items()
        )

    with contextlib.suppress(TimeoutError):
        wait_for(seen, timeout, f"the {phase} phase's requests", interval=0.05)


def test_postgres_restart_under_feed_traffic(cluster, tmp_path):
    began = time.monotonic()
    # Persistent, health-checked connections, as production runs (the suite's other
    # subprocesses open one per request).
    env = procs.montage_env(DATABASE_URL=cluster.url(), DB_CONN_MAX_AGE="60")
    _manage(env, "manage.py", "migrate", "--noinput")
    migrated = time.monotonic()
    seed = json.loads(
        _manage(env, "-m", "tests.fault.seed_feed", str(USERS), str(POSTS), str(DRAFTS))
        .strip()
        .splitlines()[-1]
    )
    seeded = time.monotonic()
    server = procs.Server(tmp_path, env)
    serving = time.monotonic()
    seed["posts"] = _publish_posts(server.base, seed)
    published = time.monotonic()
    traffic = Traffic(server.base, seed)
    probes: dict[str, Call] = {}
    server_processes = sorted(server.group.members())
    try:
        traffic.start()
        _wait_phase(traffic, "before", OK_STATUS.get, 0.0, 120)

        stop_started = time.monotonic()
        cluster.stop("fast")
        stopped = time.monotonic()
        traffic.set_phase("down")
        with httpx.Client(base_url=server.base, timeout=30) as probe:
            # The staff console is a plain Django view: its session lives in the database.
            staff_session = {"Cookie": f"sessionid={uuid.uuid4().hex}"}
            for name, path, headers in (
                ("readyz", "/readyz", None),
                ("healthz", "/healthz", None),
                ("staff", "/staff/", staff_session),
            ):
                started = time.monotonic()
                response = probe.get(path, headers=headers)
                probes[name] = Call(name, (), "down", started, time.monotonic(), response)
        _wait_phase(traffic, "down", lambda kind: 503, stopped, 30)

        restart_started = time.monotonic()
        cluster.start()
        restarted = time.monotonic()
        traffic.set_phase("after")
        _wait_phase(traffic, "after", OK_STATUS.get, restarted, 60)
        processes_after = sorted(server.group.members())
    finally:
        traffic.finish()
        server.stop()

    calls = traffic.calls
    first_ok = min(
        (c.ended for c in calls if c.started >= restarted and c.status == OK_STATUS[c.kind]),
        default=None,
    )
    recover_s = round(first_ok - restarted, 2) if first_ok is not None else None

    def window(call: Call) -> str:
        if call.started >= stopped and call.ended <= restart_started:
            return "down"
        if call.ended <= stop_started or call.started >= restarted:
            return "up"
        return "transition"

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        state = _database_state(conn, seed)

    writes = [c for c in calls if c.kind != "read"]
    answered_ok = [c for c in writes if c.status == OK_STATUS[c.kind]]
    present = [c for c in answered_ok if state.happened(c) == 1]
    duplicates = [c for c in writes if state.happened(c) > 1]
    refused = [c for c in writes if c.status == 503]
    down_calls = [c for c in calls if window(c) == "down"]
    row = {
        "fault": "postgres fast stop + restart under feed traffic",
        "accepted": len(answered_ok),
        "completed": len(present),
        "duplicates": len(duplicates),
        "lost": len(answered_ok) - len(present),
        "unavailable_while_down": sum(c.status == 503 for c in down_calls)
        + sum(probe.status == 503 for probe in probes.values()),
        "recover_s": recover_s,
        "requests": len(calls),
        "reads_ok": sum(c.kind == "read" and c.status == 200 for c in calls),
        "refused_writes_that_committed": sum(state.happened(c) == 1 for c in refused),
        "half_writes": len(state.inconsistent),
        "slowest_while_down_s": round(max((c.ended - c.started for c in down_calls), default=0), 2),
        "setup_s": {
            "migrate": round(migrated - began, 1),
            "seed": round(seeded - migrated, 1),
            "server": round(serving - seeded, 1),
            "publish_posts": round(published - serving, 1),
            "first_phase": round(stop_started - published, 1),
        },
    }
    report(row)

    assert [c.error for c in calls if c.response is None] == []
    for call in calls:
        if call.status != OK_STATUS[call.kind]:
            error = assert_error_shape(call.response, 503, "service_unavailable")
            assert call.response.headers.get("Retry-After"), (call.kind, error)
    for kind in NEEDED:
        assert any(c.kind == kind for c in down_calls), f"no {kind} request while down"
    assert all(c.status == 503 for c in down_calls)
    assert all(c.ended - c.started < DOWN_LATENCY_LIMIT for c in down_calls)
    # A write refused while the database was down did not happen at all.
    assert [c for c in down_calls if c.kind != "read" and state.happened(c)] == []
    # Before the stop and after the restart, with no process restarted, everything succeeds.
    failed_while_up = [
        (c.kind, c.status) for c in calls if window(c) == "up" and c.status != OK_STATUS[c.kind]
    ]
    assert failed_while_up == []
    assert recover_s is not None and recover_s < 30
    assert row["lost"] == 0 and duplicates == []
    assert state.inconsistent == []
    error = assert_error_shape(probes["readyz"].response, 503, "dependency_unavailable")
    assert error["param"] == "postgres"
    assert probes["healthz"].status == 200
    # The same server processes (master and worker) served throughout.
    assert processes_after == server_processes
    staff = probes["staff"].response
    assert staff.status_code == 503, staff.text[:300]
    assert staff.headers["content-type"].startswith("text/plain")
    assert staff.headers.get("Retry-After")


@dataclass
class DatabaseState:
    likes: set
    comment_bodies: dict
    posts_by_clip: dict
    inconsistent: list

    def happened(self, call: Call) -> int:
        """How many times the write ``call`` asked for is in the database (0, 1, or more)."""
        if not call.what:
            return 0
        if call.kind == "like":
            return int(call.what in self.likes)
        if call.kind == "comment":
            return self.comment_bodies.get(call.what[0], 0)
        if call.kind == "publish":
            return self.posts_by_clip.get(call.what[0], 0)
        return 0


def _database_state(conn, seed: dict) -> DatabaseState:
    likes = {
        (str(user_id), str(post_id))
        for user_id, post_id in conn.execute("SELECT user_id, post_id FROM feed_like").fetchall()
    }
    bodies: dict = {}
    for (body,) in conn.execute("SELECT body FROM feed_comment").fetchall():
        bodies[body] = bodies.get(body, 0) + 1
    posts_by_clip: dict = {}
    for (clip_id,) in conn.execute("SELECT clip_id FROM feed_post").fetchall():
        posts_by_clip[str(clip_id)] = posts_by_clip.get(str(clip_id), 0) + 1
    inconsistent = []
    counters = conn.execute(
        "SELECT p.id, p.likes_count, (SELECT count(*) FROM feed_like l WHERE l.post_id = p.id), "
        "p.comments_count, (SELECT count(*) FROM feed_comment c WHERE c.post_id = p.id) "
        "FROM feed_post p"
    ).fetchall()
    for post_id, likes_count, like_rows, comments_count, comment_rows in counters:
        if likes_count != like_rows or comments_count != comment_rows:
            inconsistent.append(
                f"post {post_id}: likes {likes_count} vs {like_rows} rows, "
                f"comments {comments_count} vs {comment_rows} rows"
            )
    for draft in seed["drafts"]:
        published, audience = conn.execute(
            "SELECT published_at IS NOT NULL, audience FROM generation_clip WHERE id = %s",
            [draft["clip_pk"]],
        ).fetchone()
        has_post = posts_by_clip.get(draft["clip_pk"], 0) > 0
        if published != has_post or (audience == "only_me") == has_post:
            inconsistent.append(
                f"clip {draft['clip_pk']}: published={published} audience={audience} "
                f"post={has_post}"
            )
    return DatabaseState(likes, bodies, posts_by_clip, inconsistent)
