"""Feed pages over HTTP against the production REST configuration, as ratios to the floor.

Seeds a social graph (users, posts with MiniLM embeddings, likes, views, follows; sizes are
arguments, modest by default because the machine is shared), starts gunicorn with 2 sync
workers (as production serves REST) and measures, interleaved on one connection:

- the floor: ``GET /api/v1/me``, a trivial authenticated endpoint;
- a For You page that starts a session (ranking: every candidate source, scoring, rules);
- a For You page read from a session (the cursor path, what scrolling costs);
- a Following page.

Then For You pages per second with several clients at once (one new session per 10 pages,
as a user opening the app and scrolling would).
"""

from __future__ import annotations

import argparse
import datetime as dt
import threading
import time

from bench.common import bench_database, emit, percentile

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
    """Returns the viewers' API keys."""
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


def _timed(client, path: str) -> tuple[float, dict]:
    import json

    started = time.perf_counter()
    client.conn.request("GET", path, headers=client.auth)
    response = client.conn.getresponse()
    payload = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise RuntimeError(f"GET {path} -> {response.status}: {payload[:300]!r}")
    return elapsed, json.loads(payload)


def _throughput(port: int, keys: list, seconds: float, clients: int) -> float:
    from bench.generation import Client

    done = [0] * clients
    stop = time.monotonic() + seconds

    def run(index: int) -> None:
        client = Client(port, keys[index % len(keys)])
        cursor = None
        pages = 0
        while time.monotonic() < stop:
            path = "/api/v1/feed/for_you" + (f"?cursor={cursor}" if cursor else "")
            _, body = _timed(client, path)
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


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--posts", type=int, default=20000)
    parser.add_argument("--likes", type=int, default=100000)
    parser.add_argument("--follows", type=int, default=40000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    lines: list[str] = []
    with bench_database() as env:
        from bench.generation import Client, _start_server

        started = time.perf_counter()
        keys = _seed(users=args.users, posts=args.posts, likes=args.likes, follows=args.follows)
        seeded = time.perf_counter() - started
        log_dir = env.scratch / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        proc, port = _start_server("gunicorn", log_dir)
        client = Client(port, keys[0])
        try:
            for _ in range(20):
                _timed(client, "/api/v1/me")
                _timed(client, "/api/v1/feed/for_you")
                _timed(client, "/api/v1/feed/following")
            floor, first, scroll, following = [], [], [], []
            cursor = None
            for _ in range(args.requests):
                floor.append(_timed(client, "/api/v1/me")[0])
                elapsed, body = _timed(client, "/api/v1/feed/for_you")
                first.append(elapsed)
                cursor = cursor or body["next_cursor"]
                elapsed, body = _timed(client, f"/api/v1/feed/for_you?cursor={cursor}")
                scroll.append(elapsed)
                cursor = body["next_cursor"]
                following.append(_timed(client, "/api/v1/feed/following")[0])
            client.close()
            rate = _throughput(port, keys, args.seconds, args.clients)
        finally:
            proc.stop()
    f50, f99 = percentile(floor, 50), percentile(floor, 99)
    size = (
        f"{args.posts:,} posts, {args.users:,} users, {args.likes:,} likes + {args.likes:,} "
        f"views, {args.follows:,} follows (seeded in {seeded:.0f} s)"
    )
    emit(lines, f"feed.floor_get_me_ms: p50 {f50:.1f}, p99 {f99:.1f}; gunicorn -w 2; {size}")
    for name, values, target in (
        ("for_you_new_session", first, "target p50 <= 3x, p99 <= 5x"),
        ("for_you_scroll", scroll, "target p50 <= 3x, p99 <= 5x"),
        ("following", following, "target p50 <= 2x"),
    ):
        p50, p99 = percentile(values, 50), percentile(values, 99)
        emit(
            lines,
            f"feed.{name}_ms: p50 {p50:.1f}, p99 {p99:.1f} = {p50 / f50:.2f}x / "
            f"{p99 / f99:.2f}x the floor; 20 items; {args.requests} interleaved; {target}",
        )
    emit(
        lines,
        f"feed.for_you_pages_per_s: {rate:.0f} ({args.clients} clients, {args.seconds:.0f} s, "
        f"a new session every 10 pages; target >= 200)",
    )
    return lines


if __name__ == "__main__":
    main()
