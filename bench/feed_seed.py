"""The feed benchmark's data set: built once with COPY, kept in its own database, reused.

A database named after the seed version and the sizes (``mbfeed_v<N>_<posts>_<users>_...``) is
built the first time it is asked for and kept: later runs only migrate it. It is built under a
``_building`` name and renamed when complete, so an interrupted build is never mistaken for a
finished one. Bump ``SEED_VERSION`` when what is seeded changes.

Rows are generated with numpy and written with COPY in PostgreSQL's binary format: the narrow
tables (likes, views, follows: tens of millions of rows) as buffers built by numpy, the wide ones
row by row through psycopg. Secondary indexes and unique constraints are dropped before the load
and rebuilt after it (a sorted build is much faster than millions of random inserts), and
foreign-key triggers are off during the load (every key is generated from rows written first).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from dataclasses import dataclass

import numpy as np

SEED_VERSION = 1
SUBJECTS = (
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
    "a hot air balloon",
    "a vintage car",
    "a ballet dancer",
    "a thunderstorm",
    "a street food vendor",
    "a origami crane",
    "a surfer",
    "a clockwork owl",
    "a lighthouse keeper",
    "a swarm of fireflies",
)
ACTIONS = (
    "drifting",
    "celebrating",
    "sleeping",
    "racing",
    "dancing",
    "exploring",
    "cooking",
    "falling",
    "glowing",
    "spinning",
)
PLACES = (
    "in a dark ocean",
    "in a stadium",
    "by a fireplace",
    "on a rainy street",
    "on the moon",
    "in a neon city",
    "in a snowy forest",
    "over a desert",
    "in a tiny kitchen",
    "at golden hour",
)
PROMPTS = [f"{s} {a} {p}" for s in SUBJECTS for a in ACTIONS for p in PLACES]
DAYS = 30
POSTGRES_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds
BIG_TABLES = (
    "accounts_user",
    "accounts_follow",
    "generation_generationjob",
    "generation_clip",
    "feed_post",
    "feed_like",
    "feed_view",
)


@dataclass(frozen=True)
class Sizes:
    users: int
    posts: int
    likes: int
    views: int
    follows: int

    def database_name(self) -> str:
        return (
            f"mbfeed_v{SEED_VERSION}_{self.posts}_{self.users}_{self.likes}_{self.views}"
            f"_{self.follows}"
        )

    def describe(self) -> str:
        return (
            f"{self.posts:,} posts, {self.users:,} users, {self.likes:,} likes, "
            f"{self.views:,} views, {self.follows:,} follows"
        )


def _uuid7(ms: np.ndarray, rng) -> np.ndarray:
    """(n, 16) bytes of UUIDv7s for Unix milliseconds ``ms``: time-sortable, as core.ids."""
    n = len(ms)
    out = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    out[:, :6] = ms.astype(">u8").view(np.uint8).reshape(n, 8)[:, 2:]
    out[:, 6] = 0x70 | (out[:, 6] & 0x0F)
    out[:, 8] = 0x80 | (out[:, 8] & 0x3F)
    return out


def _pg_time(unix_s: np.ndarray) -> np.ndarray:
    return (unix_s * 1_000_000).astype(np.int64) - POSTGRES_EPOCH_US


def _binary_copy(cursor, table: str, columns: list[tuple[str, str]], data: dict, n: int) -> None:
    """COPY ``n`` rows in binary from numpy columns: ``columns`` is [(name, kind)] with kind
    one of int8, int4, uuid, ts, bool; ``data[name]`` holds the values."""
    widths = {"int8": ">i8", "int4": ">i4", "uuid": "V16", "ts": ">i8", "bool": "u1"}
    dtype = [("count", ">i2")]
    for name, kind in columns:
        dtype += [(f"len_{name}", ">i4"), (name, widths[kind])]
    chunk = 500_000
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    trailer = (-1).to_bytes(2, "big", signed=True)
    names = ", ".join(name for name, _ in columns)
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.write(header)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            rows = np.zeros(stop - start, dtype=dtype)
            rows["count"] = len(columns)
            for name, kind in columns:
                values = data[name][start:stop]
                rows[f"len_{name}"] = np.dtype(widths[kind]).itemsize
                if kind == "uuid":
                    rows[name] = np.ascontiguousarray(values).view("V16").reshape(-1)
                else:
                    rows[name] = values
            copy.write(rows.tobytes())
        copy.write(trailer)


def _row_copy(cursor, model, rows, provided: list[str]) -> None:
    """COPY rows of ``model`` in binary through psycopg: ``provided`` columns come from each
    row, every other column gets the field's default (so a column another app adds later, with
    a default, needs no change here)."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if not getattr(f, "generated", False)]
    columns = [f.column for f in fields]
    missing = set(provided) - set(columns)
    if missing:
        raise RuntimeError(f"{model.__name__} has no columns {sorted(missing)}")
    defaults = {}
    for f in fields:
        if f.column not in provided:
            defaults[f.column] = f.get_db_prep_save(f.get_default(), connection)
    cursor.execute(
        "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attnum > 0 AND NOT attisdropped",
        [model._meta.db_table],
    )
    oids = dict(cursor.fetchall())
    order = [provided.index(c) if c in provided else None for c in columns]
    fixed = [defaults.get(c) for c in columns]
    names = ", ".join(f'"{c}"' for c in columns)
    with cursor.copy(
        f"COPY {model._meta.db_table} ({names}) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types([oids[c] for c in columns])
        for row in rows:
            copy.write_row([row[i] if i is not None else fixed[k] for k, i in enumerate(order)])


def _drop_secondary_indexes(cursor, tables) -> list[str]:
    """Drops the non-primary-key indexes and unique constraints of ``tables``; returns the
    statements that rebuild them (the HNSW index last: it is by far the slowest)."""
    rebuild = []
    for table in tables:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'u' AND NOT EXISTS ("
            "SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = "
            "pg_constraint.conindid)",
            [table],
        )
        for name, definition in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
            "FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            [table],
        )
        for name, definition in cursor.fetchall():
            cursor.execute(f"DROP INDEX {name}")
            rebuild.append(definition)
    return sorted(rebuild, key=lambda statement: "hnsw" in statement)


def _pairs(rng, count: int, left: int, right: np.ndarray | int, *, distinct=True):
    """``count`` random (left index, right index) pairs, without duplicates; the right side is
    drawn with ``right`` as weights (popularity) when it is an array."""
    if isinstance(right, int):
        b = rng.integers(0, right, count)
        size = right
    else:
        b = rng.choice(len(right), size=count, p=right)
        size = len(right)
    a = rng.integers(0, left, count)
    keys = np.unique(a.astype(np.int64) * size + b)
    if not distinct:
        return a, b
    return keys // size, keys % size


def seed(url: str, sizes: Sizes, log=print) -> None:
    """Fills the (migrated, empty) database at ``url``."""
    import psycopg
    from pgvector.psycopg import register_vector

    from accounts.models import User
    from core import embeddings
    from feed.models import Post
    from generation.models import Clip, ClipAudience, GenerationJob, JobStage, JobStatus

    rng = np.random.default_rng(7)
    now = time.time()
    started = time.perf_counter()

    def step(what: str) -> None:
        log(f"   seed: {what} ({time.perf_counter() - started:.0f} s)")

    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)
        cur = conn.cursor()
        cur.execute("SET session_replication_role = replica")
        cur.execute("SET maintenance_work_mem = '2GB'")
        cur.execute("SET max_parallel_maintenance_workers = 2")
        rebuild = _drop_secondary_indexes(cur, BIG_TABLES)

        # Users: joined over the last year; handles bench000000...
        user_ms = ((now - rng.uniform(DAYS, 365, sizes.users) * 86400) * 1000).astype(np.int64)
        user_ms.sort()
        user_ids = _uuid7(user_ms, rng)
        joined = dt.datetime.fromtimestamp(now - 365 * 86400, tz=dt.UTC)
        birth = dt.date(1990, 1, 1)
        _row_copy(
            cur,
            User,
            (
                (uuid.UUID(bytes=user_ids[i].tobytes()), f"bench{i:06d}", birth, joined)
                for i in range(sizes.users)
            ),
            ["id", "handle", "birth_date", "date_joined"],
        )
        step(f"{sizes.users:,} users")

        # Posts, newest last (ids are time-sortable): authors and topics are skewed, a few
        # creators and subjects draw most of the output, as on any social app.
        post_s = np.sort(now - rng.uniform(0, DAYS * 86400, sizes.posts))
        post_ids = _uuid7((post_s * 1000).astype(np.int64), rng)
        job_ids = _uuid7((post_s * 1000).astype(np.int64) - 60_000, rng)
        clip_ids = _uuid7((post_s * 1000).astype(np.int64) - 1_000, rng)
        author_weight = rng.lognormal(0, 1.0, sizes.users)
        authors = rng.choice(sizes.users, sizes.posts, p=author_weight / author_weight.sum())
        topic_weight = rng.lognormal(0, 0.8, len(PROMPTS))
        topics = rng.choice(len(PROMPTS), sizes.posts, p=topic_weight / topic_weight.sum())
        base = embeddings.embed(PROMPTS).astype(np.float32)
        step(f"{len(PROMPTS)} prompt embeddings")

        # Likes and views: people and posts drawn with popularity skew; then the counters the
        # services keep, from the same arrays.
        popularity = rng.lognormal(0, 1.5, sizes.posts)
        popularity /= popularity.sum()
        like_user, like_post = _pairs(rng, int(sizes.likes * 1.05), sizes.users, popularity)
        keep = rng.permutation(len(like_user))[: sizes.likes]
        like_user, like_post = like_user[keep], like_post[keep]
        view_user = rng.integers(0, sizes.users, sizes.views)
        view_post = rng.choice(sizes.posts, size=sizes.views, p=popularity)
        watch = rng.integers(500, 8000, sizes.views).astype(np.int32)
        completed = (rng.random(sizes.views) < 0.4).astype(np.uint8)
        likes_count = np.bincount(like_post, minlength=sizes.posts)
        views_count = np.bincount(view_post, minlength=sizes.posts)
        completions = np.bincount(view_post, weights=completed, minlength=sizes.posts)
        watch_ms = np.bincount(view_post, weights=watch, minlength=sizes.posts)
        step("interactions generated")

        def published(i: int) -> dt.datetime:
            return dt.datetime.fromtimestamp(float(post_s[i]), tz=dt.UTC)

        uid = [uuid.UUID(bytes=b.tobytes()) for b in user_ids]
        jid = [uuid.UUID(bytes=b.tobytes()) for b in job_ids]
        _row_copy(
            cur,
            GenerationJob,
            (
                (
                    jid[i],
                    uid[authors[i]],
                    PROMPTS[topics[i]],
                    "sora-2",
                    "previs",
                    4,
                    "720x1280",
                    i,
                    "0" * 64,
                    JobStatus.COMPLETED,
                    JobStage.DONE,
                    100,
                    published(i) - dt.timedelta(minutes=1),
                    published(i) - dt.timedelta(seconds=10),
                )
                for i in range(sizes.posts)
            ),
            [
                "id",
                "user_id",
                "prompt",
                "model",
                "engine",
                "seconds",
                "size",
                "seed",
                "params_hash",
                "status",
                "stage",
                "progress",
                "created_at",
                "completed_at",
            ],
        )
        step(f"{sizes.posts:,} jobs")
        cid = [uuid.UUID(bytes=b.tobytes()) for b in clip_ids]
        # Some clips are for followers only, age-restricted, held for review or removed: the
        # feeds' read-time filters have something to filter.
        state = rng.choice(5, sizes.posts, p=[0.925, 0.05, 0.02, 0.003, 0.002])
        _row_copy(
            cur,
            Clip,
            (
                (
                    cid[i],
                    jid[i],
                    uid[authors[i]],
                    4.0,
                    720,
                    1280,
                    1,
                    "0" * 64,
                    {"state": "trusted"},
                    int(i).to_bytes(8, "big"),
                    ClipAudience.FOLLOWERS if state[i] == 1 else ClipAudience.PUBLIC,
                    published(i),
                    published(i) - dt.timedelta(seconds=1),
                    state[i] == 2,
                    published(i) if state[i] == 3 else None,
                    published(i) if state[i] == 4 else None,
                )
                for i in range(sizes.posts)
            ),
            [
                "id",
                "job_id",
                "user_id",
                "duration_s",
                "width",
                "height",
                "bytes",
                "sha256",
                "manifest",
                "watermark",
                "audience",
                "published_at",
                "created_at",
                "age_restricted",
                "held_at",
                "removed_at",
            ],
        )
        step(f"{sizes.posts:,} clips")

        def vector(i: int) -> np.ndarray:
            v = base[topics[i]] + rng.normal(0, 0.03, base.shape[1]).astype(np.float32)
            return v / np.linalg.norm(v)

        _row_copy(
            cur,
            Post,
            (
                (
                    uuid.UUID(bytes=post_ids[i].tobytes()),
                    cid[i],
                    uid[authors[i]],
                    f"#bench{topics[i] % 50} {PROMPTS[topics[i]]}",
                    PROMPTS[topics[i]],
                    [f"bench{topics[i] % 50}"],
                    vector(i),
                    published(i),
                    int(likes_count[i]),
                    int(views_count[i]),
                    int(completions[i]),
                    int(watch_ms[i]),
                )
                for i in range(sizes.posts)
            ),
            [
                "id",
                "clip_id",
                "author_id",
                "caption",
                "prompt",
                "hashtags",
                "embedding",
                "created_at",
                "likes_count",
                "views_count",
                "completions_count",
                "watch_ms",
            ],
        )
        del cid, jid
        step(f"{sizes.posts:,} posts")

        like_s = np.maximum(post_s[like_post], now - rng.uniform(0, DAYS * 86400, sizes.likes))
        order = np.argsort(like_s)
        _binary_copy(
            cur,
            "feed_like",
            [("id", "int8"), ("post_id", "uuid"), ("user_id", "uuid"), ("created_at", "ts")],
            {
                "id": np.arange(1, sizes.likes + 1, dtype=np.int64),
                "post_id": post_ids[like_post[order]],
                "user_id": user_ids[like_user[order]],
                "created_at": _pg_time(like_s[order]),
            },
            sizes.likes,
        )
        step(f"{sizes.likes:,} likes")
        view_s = np.maximum(post_s[view_post], now - rng.uniform(0, DAYS * 86400, sizes.views))
        order = np.argsort(view_s)
        _binary_copy(
            cur,
            "feed_view",
            [
                ("id", "int8"),
                ("post_id", "uuid"),
                ("user_id", "uuid"),
                ("watch_ms", "int4"),
                ("completed", "bool"),
                ("created_at", "ts"),
            ],
            {
                "id": np.arange(1, sizes.views + 1, dtype=np.int64),
                "post_id": post_ids[view_post[order]],
                "user_id": user_ids[view_user[order]],
                "watch_ms": watch[order],
                "completed": completed[order],
                "created_at": _pg_time(view_s[order]),
            },
            sizes.views,
        )
        step(f"{sizes.views:,} views")
        del like_user, like_post, view_user, view_post

        # Follows: anyone may follow anyone, popular creators (by post count) more often.
        followee_weight = np.bincount(authors, minlength=sizes.users) + 0.5
        follower, followee = _pairs(
            rng, int(sizes.follows * 1.05), sizes.users, followee_weight / followee_weight.sum()
        )
        mask = follower != followee
        follower, followee = follower[mask][: sizes.follows], followee[mask][: sizes.follows]
        n = len(follower)
        shuffle = rng.permutation(n)
        _binary_copy(
            cur,
            "accounts_follow",
            [
                ("id", "int8"),
                ("follower_id", "uuid"),
                ("followee_id", "uuid"),
                ("created_at", "ts"),
            ],
            {
                "id": np.arange(1, n + 1, dtype=np.int64),
                "follower_id": user_ids[follower[shuffle]],
                "followee_id": user_ids[followee[shuffle]],
                "created_at": _pg_time(np.full(n, now - 86400.0)),
            },
            n,
        )
        step(f"{n:,} follows")

        for table in ("feed_like", "feed_view", "accounts_follow"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        for statement in rebuild:
            if "hnsw" in statement:
                # The graph of a million 384-dimension vectors needs ~2 GB to build in memory.
                cur.execute("SET maintenance_work_mem = '3GB'")
            cur.execute(statement)
            step(statement.split(" ON ")[0].replace("CREATE ", "").replace("ALTER TABLE ", ""))
        cur.execute("SET session_replication_role = DEFAULT")
        for table in BIG_TABLES:
            cur.execute(f"VACUUM (ANALYZE) {table}")
        cur.execute("ANALYZE")
        step("indexes rebuilt, vacuumed and analysed")


def _point_django_at(url: str) -> None:
    """Makes ``url`` the database of this process's Django and of every child it starts."""
    import os
    from urllib.parse import urlsplit

    import django
    from django.apps import apps

    os.environ["DATABASE_URL"] = url
    if not apps.ready:
        django.setup()
        return
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    name = urlsplit(url).path.lstrip("/")
    settings.DATABASES["default"]["NAME"] = name
    connections["default"].settings_dict["NAME"] = name


@contextlib.contextmanager
def seeded_database(sizes: Sizes, log=print):
    """Yields (bench environment, seconds the seed took, whether it was reused) with Django
    pointed at the database for ``sizes``; builds that database first when it is missing.
    Redis database 13 (the benchmarks') is flushed before and after."""
    import psycopg
    from django.core.management import call_command

    from bench import common

    env = common.configure()
    name = sizes.database_name()
    building = f"{name}_building"
    url = common._with_path(env.database_url, f"/{name}")
    per_run_url = env.database_url
    common._flush_redis(env.redis_url)

    def described() -> str | None:
        with psycopg.connect(env.admin_url, autocommit=True) as admin:
            row = admin.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                [name],
            ).fetchone()
        return None if row is None else (row[0] or "")

    description = described()
    reused = description is not None
    if not reused:
        log(f"   seed: building {name} ({sizes.describe()})")
        with psycopg.connect(env.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{building}"')
        started = time.perf_counter()
        _point_django_at(common._with_path(env.database_url, f"/{building}"))
        call_command("migrate", interactive=False, verbosity=0)
        seed(common._with_path(env.database_url, f"/{building}"), sizes, log=log)
        seconds = time.perf_counter() - started
        from django.db import connections

        connections.close_all()
        with psycopg.connect(env.admin_url, autocommit=True) as admin:
            admin.execute(f"COMMENT ON DATABASE \"{building}\" IS 'seeded in {seconds:.0f} s'")
            admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        description = described()
    seed_seconds = float(description.split()[2]) if description.startswith("seeded in") else 0.0
    _point_django_at(url)
    try:
        # A schema change since the seed (a new index, a new table) applies to the cached copy.
        call_command("migrate", interactive=False, verbosity=0)
        yield env, seed_seconds, reused
    finally:
        from django.db import connections

        connections.close_all()
        common._flush_redis(env.redis_url)
        _point_django_at(per_run_url)
