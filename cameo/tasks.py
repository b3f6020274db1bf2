"""Celery tasks for cameos: interfaces only; they take ids and call services."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.core.cache import cache

from cameo.models import RecordingCheck
from core.tasks import enqueue_on_commit

logger = logging.getLogger("montage.cameo")


def enqueue_verification(check: RecordingCheck) -> None:
    enqueue_on_commit(verify, args=(str(check.pk),), queue="cpu")


@shared_task(
    name="cameo.verify_recording",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    time_limit=600,
    soft_time_limit=570,
)
def verify(check_id: str) -> None:
    from cameo.services import verification_run

    check = RecordingCheck.objects.select_related("cameo", "challenge").filter(pk=check_id).first()
    if check is None:
        return
    verification_run(check=check)


STALLED_AFTER = dt.timedelta(minutes=10)


@shared_task(name="cameo.sweep", time_limit=120, soft_time_limit=110, ignore_result=True)
def sweep() -> dict:
    """Backstop for lost messages: re-sends the verification of every recording still waiting
    after STALLED_AFTER (a duplicate is harmless: a finished check is skipped), and forgets
    challenges that expired unused a day ago."""
    from cameo.selectors import checks_stalled
    from cameo.services import challenges_purge

    resent = 0
    for check in checks_stalled(waited=STALLED_AFTER):
        # At most one re-send per check per STALLED_AFTER.
        if cache.add(f"cameo-verify:{check.pk}", "1", timeout=int(STALLED_AFTER.total_seconds())):
            verify.apply_async(args=(str(check.pk),), queue="cpu")
            resent += 1
    if resent:
        logger.warning("re-sent %d stalled cameo verification(s)", resent)
    return {"resent": resent, "challenges_purged": challenges_purge()}
