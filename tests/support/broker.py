"""Looking inside the real Redis broker: which task messages wait in a queue, and removing them.

Reads the lists the kombu Redis transport itself writes to (one per priority level), so a test
can say "no message carrying this marker was ever published" without a worker to observe it.
"""

from __future__ import annotations

import base64
import json
from contextlib import contextmanager

import pytest


@contextmanager
def redis_broker_channel():
    from config.celery import app

    with app.connection_for_read() as conn:
        if conn.transport.driver_type != "redis":
            pytest.skip(f"inspects a Redis broker; this one is {conn.transport.driver_type}")
        yield conn.default_channel


def _queue_keys(channel, queue: str) -> list[str]:
    return sorted({channel._q_for_pri(queue, pri) for pri in channel.priority_steps})


def _decode(raw: bytes) -> dict:
    message = json.loads(raw)
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, kwargs, _embed = json.loads(body)
    return {"task": message["headers"]["task"], "args": args, "kwargs": kwargs}


def queued_tasks(queue: str) -> list[dict]:
    """Every task message waiting in ``queue``: ``{"task", "args", "kwargs"}``."""
    with redis_broker_channel() as channel:
        client = channel.client
        return [
            _decode(raw) for key in _queue_keys(channel, queue) for raw in client.lrange(key, 0, -1)
        ]


def queue_length(queue: str) -> int:
    with redis_broker_channel() as channel:
        return sum(channel.client.llen(key) for key in _queue_keys(channel, queue))


def tasks_carrying(queue: str, marker: str) -> list[dict]:
    return [task for task in queued_tasks(queue) if marker in task["args"]]


def delete_queue(queue: str) -> None:
    """Drops a queue a test created, messages and exchange bindings included."""
    with redis_broker_channel() as channel:
        client = channel.client
        client.delete(*_queue_keys(channel, queue))
        for key in client.scan_iter(match=f"_kombu.binding*{queue}*"):
            client.delete(key)
