"""Chooses the servers ``make test`` runs against and prints them as shell assignments.

Order: DATABASE_URL / REDIS_URL when set; else the local services on their standard ports when
they answer (PostgreSQL 127.0.0.1:5432 only if it offers the pgvector extension, which the feed
needs; Redis 127.0.0.1:6379); else the embedded servers (pgserver's PostgreSQL ships pgvector),
in a data directory of their own (``.data/test``) so a running ``make run`` is never disturbed.
``MONTAGE_EMBEDDED=1`` skips the local services.
"""

from __future__ import annotations

import os
import shlex
import socket

from config import embedded

LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/montage"
# Its own Redis database: a developer's `make run` on db 0 must not consume the tests' tasks.
LOCAL_REDIS = "redis://127.0.0.1:6379/14"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _has_pgvector(url: str) -> bool:
    """Whether the server at ``url`` can install pgvector (the feed's embeddings need it)."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
    except psycopg.Error:
        return False
    return row is not None


def choose() -> dict[str, str]:
    chosen: dict[str, str] = {}
    use_local = os.environ.get("MONTAGE_EMBEDDED", "") not in {"1", "true", "yes"}
    database = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if not database and use_local and _answers("127.0.0.1", 5432) and _has_pgvector(LOCAL_POSTGRES):
        database = LOCAL_POSTGRES
    if not redis_url and use_local and _answers("127.0.0.1", 6379):
        redis_url = LOCAL_REDIS
    if not database or not redis_url:
        test_dir = embedded.data_dir() / "test"
        os.environ["MONTAGE_DATA_DIR"] = str(test_dir)
        chosen["MONTAGE_DATA_DIR"] = str(test_dir)
        database = database or embedded.postgres_url()
        redis_url = redis_url or embedded.redis_url()
    chosen["DATABASE_URL"] = database
    chosen["REDIS_URL"] = redis_url
    return chosen


if __name__ == "__main__":
    print(" ".join(f"{key}={shlex.quote(value)}" for key, value in choose().items()))
