"""core.tasks.enqueue_on_commit against a real broker and a real Celery worker process."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from django.conf import settings
from django.db import transaction

from accounts.models import User
from core.tasks import enqueue_on_commit
from tests.factories import UserFactory
from tests.fixtures import wait_for
from tests.support.broker import delete_queue, queue_length, queued_tasks, tasks_carrying
from tests.support.tasks import record_user_visibility

pytestmark = pytest.mark.django_db(transaction=True)


class Abort(Exception):
    """Raised inside a transaction to roll it back."""


@pytest.fixture
def markers():
    """Unique Redis keys the test task writes to; removed afterwards."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    made: list[str] = []

    def make() -> str:
        made.append(f"test:visibility:{uuid.uuid4().hex}")
        return made[-1]

    make.redis = client
    yield make
    if made:
        client.delete(*made)
    client.close()


@pytest.fixture
def private_queue():
    """A queue no worker consumes, so what reaches the broker stays there to be counted."""
    name = f"test-unconsumed-{uuid.uuid4().hex}"
    yield name
    delete_queue(name)


def test_task_enqueued_in_a_transaction_reaches_the_worker_only_after_commit(
    module_celery_worker, markers
):
    marker = markers()
    with transaction.atomic():
        user = UserFactory()
        enqueue_on_commit(record_user_visibility, args=(str(user.pk), marker))
        # A running worker would have picked the task up well within this second, had it
        # been sent; it would then have written "missing", since the row is not committed.
        time.sleep(1.0)
        assert markers.redis.get(marker) is None
        assert tasks_carrying("cpu", marker) == []

    seen = wait_for(lambda: markers.redis.get(marker), 30, "the worker to run the task")
    assert seen == b"seen"


def test_task_enqueued_in_a_rolled_back_transaction_never_runs(module_celery_worker, markers):
    rolled_back, committed = markers(), markers()
    with pytest.raises(Abort), transaction.atomic():
        ghost = UserFactory()
        enqueue_on_commit(record_user_visibility, args=(str(ghost.pk), rolled_back))
        raise Abort
    assert not User.objects.filter(pk=ghost.pk).exists()
    assert tasks_carrying("cpu", rolled_back) == []

    # The worker runs one task at a time in queue order: once a task committed after the
    # rollback has run, anything the rolled-back block had sent would have run before it.
    with transaction.atomic():
        user = UserFactory()
        enqueue_on_commit(record_user_visibility, args=(str(user.pk), committed))
    assert wait_for(lambda: markers.redis.get(committed), 30, "the later task") == b"seen"
    time.sleep(2.0)
    assert markers.redis.get(rolled_back) is None


def test_broker_receives_nothing_from_a_rollback_and_exactly_one_message_per_commit(
    private_queue, markers
):
    """No worker here: what reaches the broker stays in the queue and is counted."""
    user = UserFactory()
    rolled_back, savepoint, committed, autocommit = markers(), markers(), markers(), markers()

    with pytest.raises(Abort), transaction.atomic():
        enqueue_on_commit(
            record_user_visibility, args=(str(user.pk), rolled_back), queue=private_queue
        )
        raise Abort
    assert queue_length(private_queue) == 0

    # A savepoint rolled back inside a transaction that commits drops only its own tasks.
    with transaction.atomic():
        with pytest.raises(Abort), transaction.atomic():
            enqueue_on_commit(
                record_user_visibility, args=(str(user.pk), savepoint), queue=private_queue
            )
            raise Abort
        enqueue_on_commit(
            record_user_visibility, args=(str(user.pk), committed), queue=private_queue
        )
        assert queue_length(private_queue) == 0
    assert queued_tasks(private_queue) == [
        {"task": "tests.record_user_visibility", "args": [str(user.pk), committed], "kwargs": {}}
    ]

    # Outside any transaction there is nothing to wait for: it is sent at once.
    enqueue_on_commit(record_user_visibility, args=(str(user.pk), autocommit), queue=private_queue)
    assert queue_length(private_queue) == 2
    assert len(tasks_carrying(private_queue, autocommit)) == 1


def test_every_beat_entry_names_a_registered_task_that_can_be_sent(private_queue):
    """What beat does every few minutes, done once: a missing task name or contradictory time
    limits (a soft limit above the hard one, which Celery refuses to send) would otherwise
    surface only as an error line in the beat log."""
    from config.celery import app

    app.loader.import_default_modules()
    schedule = settings.CELERY_BEAT_SCHEDULE
    unsendable = {}
    for entry_name, entry in schedule.items():
        task = app.tasks.get(entry["task"])
        if task is None:
            unsendable[entry_name] = f"no task named {entry['task']!r} is registered"
            continue
        try:
            task.apply_async(
                args=entry.get("args", ()), kwargs=entry.get("kwargs", {}), queue=private_queue
            )
        except Exception as exc:
            unsendable[entry_name] = f"{type(exc).__name__}: {exc}"
    assert unsendable == {}
    assert queue_length(private_queue) == len(schedule)
