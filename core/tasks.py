"""Task helpers shared by every app, and core's own periodic tasks."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction


def enqueue_on_commit(task, *, args: tuple = (), kwargs: dict | None = None, **options) -> None:
    """Sends ``task`` to the broker only once the surrounding transaction commits.

    A worker must never see a job before its row exists, and a rolled-back request must never
    leave a task behind. Outside a transaction (autocommit) it sends at once.
    """
    # robust: a broker outage after the commit is logged, not raised into a request whose
    # data is already saved; the generation reaper re-sends what never reached the broker.
    transaction.on_commit(
        lambda: task.apply_async(args=args, kwargs=kwargs or {}, **options), robust=True
    )


# soft_time_limit with time_limit: the soft one otherwise comes from CELERY_TASK_SOFT_TIME_LIMIT
# (28 min), above this hard limit, and Celery then refuses to send the task at all.
@shared_task(
    name="core.purge_idempotency_keys",
    time_limit=300,
    soft_time_limit=270,
    ignore_result=True,
)
def purge_idempotency_keys() -> int:
    from core.idempotency import purge_expired

    return purge_expired()
