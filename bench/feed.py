"""Feed pages over HTTP against the production REST configuration, as ratios to the floor.

Run: ``python -m bench.feed [--posts N --users N --likes N --views N --follows N]
[--requests N] [--cold N] [--seconds S] [--clients N]``. The defaults are the sizes the feed is
judged at: 1,000,000 posts, 100,000 users, 10,000,000 likes and as many views, 2,000,000
follows. That data set is seeded once with COPY into a database of its own and kept
(bench.feed_seed: rebuilt only when the seed version or the sizes change); the seed time is
reported either way.

gunicorn serves the WSGI app with the production settings file (``-c config/gunicorn.py``) and 2
sync workers, and these are measured, interleaved request by request on one connection:

- the floor: ``GET /api/v1/me``, a trivial authenticated endpoint;
- For You, starting a session from the viewer's ranked list (built beforehand, as the
  ``feed.build_for_you`` worker task does: the steady state); its build time is reported too;
- For You, starting a session for a viewer without a list (ranked inline: a cold start);
- For You, scrolling a session (the cursor path);
- Following, first and later pages.

Then For You pages per second with several clients at once, each starting a new session every
10 pages, as people opening the app and scrolling would. The machine is shared: the load
average is reported with the figures, and every ratio is to the floor measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import BIN, Proc, emit, free_port, listening, percentile, wait_for

PROMPTS = [
    f"{subject} {action} {place}"
    for subject in (
        "a glowing jellyfish",
        "a football team",
        "a cozy cat",
        "a paper boat",
        "a robot chef",
        "a dragon kite",
        "a skateboarder",
        "a snow leopard",
        "a jazz band",
        "a tiny astronaut",
    )
    for action in ("drifting", "celebrating", "sleeping", "racing", "dancing")
    for place in ("in a dark ocean", "in a stadium", "by a fireplace", "on a rainy street")
]


def _seed(*, users: int, posts: int, likes: int, follows: int) -> list:
    """A small social graph written through the ORM into the current database (the load
    benchmark's; this one uses bench.feed_seed). Returns the viewers' API keys."""
    import numpy as np
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from accounts.services import api_key_create
    from core import embeddings
    from feed.models import Post
    from generation.models import Clip, ClipAudience, GenerationJob, JobStage, JobStatus

    people = User.objects.bulk_create(
        [User(handle=f"bench{i:06d}", birth_date=dt.date(1990, 1, 1)) for i in range(users)],
        batch_size=5000,
    )
    vectors = embeddings.embed(PROMPTS)
    now = timezone.now()
    rng = np.random.default_rng(7)
    batch = 5000
    for start in range(0, posts, batch):
        count = min(batch, posts - start)
        authors = [people[int(a)] for a in rng.integers(0, users, count)]
        ages = rng.uniform(0, 7 * 24 * 3600, count)
        jobs = GenerationJob.objects.bulk_create(
            [
                GenerationJob(
                    user=authors[k],
                    prompt=PROMPTS[(start + k) % len(PROMPTS)],
                    model="sora-2",
                    engine="previs",
                    seconds=4,
                    size="720x1280",
                    seed=start + k,
                    params={},
                    params_hash="0" * 64,
                    status=JobStatus.COMPLETED,
                    stage=JobStage.DONE,
                )
                for k in range(count)
            ]
        )
        clips = Clip.objects.bulk_create(
            [
                Clip(
                    job=job,
                    user=authors[k],
                    duration_s=4,
                    width=720,
                    height=1280,
                    bytes=1,
                    sha256="0" * 64,
                    manifest={"state": "trusted"},
                    watermark=(start + k).to_bytes(8, "big"),
                    audience=ClipAudience.PUBLIC,
                    published_at=now - dt.timedelta(seconds=float(ages[k])),
                )
                for k, job in enumerate(jobs)
            ]
        )
        Post.objects.bulk_create(
            [
                Post(
                    clip=clip,
                    author=authors[k],
                    caption=f"#bench{(start + k) % 50}",
                    prompt=jobs[k].prompt,
                    hashtags=[f"bench{(start + k) % 50}"],
                    embedding=vectors[(start + k) % len(PROMPTS)].tolist(),
                    created_at=clip.published_at,
                )
                for k, clip in enumerate(clips)
            ]
        )
    with connection.cursor() as cursor:
        # Random edges in SQL; duplicates and self-edges are dropped by the constraints.
        cursor.execute(
            "INSERT INTO accounts_follow (follower_id, followee_id, created_at) "
            "SELECT u1.id, u2.id, now() FROM generate_series(1, %s) g "
            "JOIN LATERAL (SELECT (random() * (%s - 1))::int AS a, "
            "(random() * (%s - 1))::int AS b, g) r ON true "
            "JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM accounts_user) u1 "
            "ON u1.n = r.a "
            "JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM accounts_user) u2 "
            "ON u2.n = r.b WHERE u1.id <> u2.id ON CONFLICT DO NOTHING",
            [follows, users, users],
        )
        for table, extra in (("feed_like", ""), ("feed_view", ", watch_ms, completed")):
            values = ", (random() * 8000)::int, random() < 0.4" if extra else ""
            conflict = " ON CONFLICT DO NOTHING" if not extra else ""
            cursor.execute(
                f"INSERT INTO {table} (post_id, user_id, created_at{extra}) "  # noqa: S608
                f"SELECT p.id, u.id, now(){values} FROM generate_series(1, %s) g "
                "JOIN LATERAL (SELECT (random() * (%s - 1))::int AS a, "
                "(random() * (%s - 1))::int AS b, g) r ON true "
                "JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM feed_post) p "
                "ON p.n = r.a "
                "JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM accounts_user) u "
                f"ON u.n = r.b{conflict}",
                [likes, posts, users],
            )
        # The counters the services keep, set once from the seeded rows.
        cursor.execute(
            "UPDATE feed_post p SET likes_count = c.n FROM (SELECT post_id, count(*) n "
            "FROM feed_like GROUP BY post_id) c WHERE c.post_id = p.id"
        )
        cursor.execute(
            "UPDATE feed_post p SET views_count = c.n, completions_count = c.done, "
            "watch_ms = c.ms FROM (SELECT post_id, count(*) n, count(*) FILTER (WHERE "
            "completed) done, sum(watch_ms) ms FROM feed_view GROUP BY post_id) c "
            "WHERE c.post_id = p.id"
        )
        cursor.execute("ANALYZE")
    return [api_key_create(user=people[i], name="bench")[1] for i in range(8)]


class Client:
    """One HTTP/1.1 connection (reopened when gunicorn's sync worker closes it)."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str, key: str) -> tuple[float, dict]:
        """(milliseconds to the last byte of a 200 response, its body)."""
        started = time.perf_counter()
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"GET {path} -> {response.status}: {payload[:300]!r}")
        return elapsed, json.loads(payload)

    def close(self) -> None:
        self.conn.close()


def _start_gunicorn(log_dir: Path) -> tuple[Proc, int]:
    """The production REST server: the WSGI app, the production settings file, 2 sync
    workers."""
    port = free_port()
    args = [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "-w", "2", "-k", "sync"]
    args += ["-b", f"127.0.0.1:{port}", "--log-level", "warning"]
    proc = Proc(args, log_dir / "gunicorn.log")

    def up():
        proc.check_alive("gunicorn")
        return listening(port)

    wait_for(up, 60, "gunicorn to listen")
    return proc, port


def _viewers(count: int, *, offset: int) -> list:
    """``count`` seeded accounts that follow someone, from the ``offset``-th on, with a fresh
    API key each."""
    from accounts.models import Follow, User
    from accounts.services import api_key_create

    following = Follow.objects.values("follower_id")
    people = list(
        User.objects.filter(handle__startswith="bench", id__in=following).order_by("handle")[
            offset : offset + count
        ]
    )
    return [(user, api_key_create(user=user, name="bench-feed")[1]) for user in people]


def _build_lists(viewers) -> list[float]:
    """Ranks each viewer's list as the worker task does; milliseconds per list."""
    from feed.services import for_you_list_build

    times = []
    for user, _ in viewers:
        started = time.perf_counter()
        for_you_list_build(user=user)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _following_plan(user) -> str:
    """EXPLAIN ANALYZE of ``user``'s first Following page, as the server runs it."""
    from django.db import connection

    from feed import selectors

    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        selectors.following_page(viewer=user, before=selectors.NEWEST, limit=20)
    sql, params = captured[-1]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def _throughput(port: int, keys: list, seconds: float, clients: int, *, feed: bool) -> float:
    """Requests per second from ``clients`` threads for ``seconds``: For You pages (a new
    session every 10 pages) when ``feed``, else the floor."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def run(index: int) -> None:
        client = Client(port)
        mine = keys[index::clients]
        pages, cursor = 0, None
        while time.monotonic() < stop:
            key = mine[(pages // 10) % len(mine)]
            if not feed:
                client.get("/api/v1/me", key)
                pages += 1
                continue
            path = "/api/v1/feed/for_you" + (f"?cursor={cursor}" if cursor else "")
            _, body = client.get(path, key)
            pages += 1
            cursor = body["next_cursor"] if pages % 10 else None
        done[index] = pages
        client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def _cpu_seconds(pids) -> dict[int, float]:
    """{pid: user + system CPU seconds used so far} of those of ``pids`` still running."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def _cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings: a process that started in between counts whole, one
    that ended in between counts nothing (its last moments cannot be read)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _server_pids(master: int) -> tuple[list[int], list[int]]:
    """(gunicorn's workers, the PostgreSQL backends connected to this database)."""
    from django.db import connection

    workers = [
        int(path.parent.name)
        for path in Path("/proc").glob("[0-9]*/stat")
        if _parent(path) == master
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        backends = [row[0] for row in cursor.fetchall()]
    return workers, backends


def _parent(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class Load:
    """Requests served and the server CPU they took (Redis and the clients are left out)."""

    requests: int = 0
    seconds: float = 0.0
    python_s: float = 0.0  # gunicorn workers
    postgres_s: float = 0.0  # their PostgreSQL backends

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def cpu_ms(self) -> tuple[float, float]:
        """(gunicorn, PostgreSQL) CPU milliseconds per request."""
        return self.python_s * 1000 / self.requests, self.postgres_s * 1000 / self.requests


def _measured_throughput(port, master, keys, seconds, clients) -> tuple[Load, Load]:
    """The floor and For You pages, in alternating slices of about two seconds (so a burst of
    load from a neighbour falls on both), ``seconds`` each in all."""
    floor, feed = Load(), Load()
    slices = max(1, round(seconds / 2))
    for _ in range(slices):
        for load, is_feed in ((floor, False), (feed, True)):
            workers, backends = _server_pids(master)
            python, postgres = _cpu_seconds(workers), _cpu_seconds(backends)
            rate = _throughput(port, keys, seconds / slices, clients, feed=is_feed)
            load.requests += round(rate * seconds / slices)
            load.seconds += seconds / slices
            workers_after, backends_after = _server_pids(master)
            load.python_s += _cpu_used(python, _cpu_seconds(workers_after))
            load.postgres_s += _cpu_used(postgres, _cpu_seconds(backends_after))
    return floor, feed


def _figure(lines, name, values, floor, target: str, note: str = "") -> None:
    f50, f99 = percentile(floor, 50), percentile(floor, 99)
    p50, p99 = percentile(values, 50), percentile(values, 99)
    emit(
        lines,
        f"feed.{name}_ms: p50 {p50:.1f}, p99 {p99:.1f} = {p50 / f50:.2f}x / {p99 / f99:.2f}x "
        f"the floor; {len(values)} requests{note}; {target}",
    )


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--likes", type=int, default=10_000_000)
    parser.add_argument("--views", type=int, default=10_000_000)
    parser.add_argument("--follows", type=int, default=2_000_000)
    parser.add_argument("--requests", type=int, default=200, help="interleaved rounds")
    parser.add_argument("--cold", type=int, default=40, help="cold session starts")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--viewers", type=int, default=50, help="viewers with ranked lists")
    parser.add_argument("--explain", action="store_true", help="print the Following plan")
    args = parser.parse_args(argv)
    from bench.feed_seed import Sizes, seeded_database

    sizes = Sizes(args.users, args.posts, args.likes, args.views, args.follows)
    lines: list[str] = []
    with seeded_database(sizes) as (env, seed_seconds, reused):
        from django.db import connection

        from accounts.models import ApiKey
        from feed.models import FeedSession, ForYouList

        # What earlier runs left in the kept database.
        FeedSession.objects.all().delete()
        ForYouList.objects.all().delete()
        ApiKey.objects.filter(name="bench-feed").delete()
        os.environ["FEED_VERIFY_COMPILED_QUERIES"] = "false"
        from django.conf import settings

        settings.FEED_VERIFY_COMPILED_QUERIES = False
        warm = _viewers(args.viewers, offset=0)
        cold = _viewers(args.cold, offset=args.viewers)
        builds = _build_lists(warm)
        plan = _following_plan(warm[0][0])
        if args.explain:
            print(plan)
        following_exec = float(plan.rsplit("Execution Time: ", 1)[1].split()[0])
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM accounts_follow WHERE follower_id = %s", [warm[0][0].pk]
            )
            followees = cursor.fetchone()[0]
        connection.close()
        log_dir = env.scratch / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        load_before = os.getloadavg()
        proc, port = _start_gunicorn(log_dir)
        client = Client(port)
        try:
            # Both workers load Django lazily and open their connections on first use.
            for _user, key in warm[:10]:
                client.get("/api/v1/me", key)
                client.get("/api/v1/feed/for_you", key)
                client.get("/api/v1/feed/following", key)
            floor, start, scroll, following = [], [], [], []
            cursors: dict = {}
            for index in range(args.requests):
                _, key = warm[index % len(warm)]
                floor.append(client.get("/api/v1/me", key)[0])
                elapsed, body = client.get("/api/v1/feed/for_you", key)
                start.append(elapsed)
                cursor = cursors.get(key) or body["next_cursor"]
                elapsed, body = client.get(f"/api/v1/feed/for_you?cursor={cursor}", key)
                scroll.append(elapsed)
                cursors[key] = body["next_cursor"]
                after = cursors.get(("following", key))
                path = "/api/v1/feed/following" + (f"?cursor={after}" if after else "")
                elapsed, body = client.get(path, key)
                following.append(elapsed)
                cursors[("following", key)] = body["next_cursor"]
            cold_floor, cold_start = [], []
            for _user, key in cold:
                cold_floor.append(client.get("/api/v1/me", key)[0])
                cold_start.append(client.get("/api/v1/feed/for_you", key)[0])
            client.close()
            keys = [key for _, key in warm]
            floor_load, feed_load = _measured_throughput(
                port, proc.popen.pid, keys, args.seconds, args.clients
            )
        finally:
            proc.stop()
        load_after = os.getloadavg()
    f50, f99 = percentile(floor, 50), percentile(floor, 99)
    seeded = f"seeded in {seed_seconds:.0f} s" + (" (kept from an earlier run)" if reused else "")
    emit(
        lines,
        f"feed.floor_get_me_ms: p50 {f50:.1f}, p99 {f99:.1f}; gunicorn -c config/gunicorn.py "
        f"-w 2; {sizes.describe()} ({seeded}); load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after",
    )
    _figure(
        lines,
        "for_you_start",
        start,
        floor,
        "target p50 <= 3x, p99 <= 5x",
        " (from the ranked list)",
    )
    _figure(lines, "for_you_scroll", scroll, floor, "target p50 <= 3x, p99 <= 5x")
    _figure(lines, "following", following, floor, "target p50 <= 2x")
    _figure(lines, "for_you_start_cold", cold_start, cold_floor, "no target (ranked inline)")
    emit(
        lines,
        f"feed.for_you_list_build_ms: p50 {statistics.median(builds):.0f}, max {max(builds):.0f} "
        f"({len(builds)} lists, in the benchmark process as the worker task runs it)",
    )
    emit(
        lines,
        f"feed.following_query_ms: {following_exec:.2f} (EXPLAIN ANALYZE execution, a viewer "
        f"following {followees})",
    )
    (floor_py, floor_pg), (feed_py, feed_pg) = floor_load.cpu_ms(), feed_load.cpu_ms()
    emit(
        lines,
        f"feed.for_you_pages_per_s: {feed_load.rate:.0f} ({args.clients} clients, "
        f"{args.seconds:.0f} s, a new session every 10 pages; target >= 200); the floor in "
        f"alternating slices: {floor_load.rate:.0f} req/s",
    )
    page_cpu, floor_cpu = feed_py + feed_pg, floor_py + floor_pg
    emit(
        lines,
        f"feed.for_you_server_cpu_ms_per_page: {page_cpu:.1f} (gunicorn {feed_py:.1f} + "
        f"PostgreSQL {feed_pg:.1f}) = {page_cpu / floor_cpu:.2f}x the floor's {floor_cpu:.1f} "
        f"({floor_py:.1f} + {floor_pg:.1f}); at that cost 2 cores serve {2000 / page_cpu:.0f} "
        "pages/s",
    )
    return lines


if __name__ == "__main__":
    from bench.common import configure

    configure()
    main()
