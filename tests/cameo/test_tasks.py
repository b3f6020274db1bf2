"""The cameo sweep: a verification whose message was lost is sent again (once per period),
and challenges that expired unused are forgotten."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from cameo.models import Cameo, Challenge, RecordingCheck
from cameo.tasks import sweep
from tests.support.broker import delete_queue, tasks_carrying

pytestmark = pytest.mark.django_db


@pytest.fixture
def cpu_queue():
    delete_queue("cpu")
    yield "cpu"
    delete_queue("cpu")


def _check(owner, *, age: dt.timedelta, finished: bool = False) -> RecordingCheck:
    cameo = Cameo.objects.create(
        owner=owner, kind="person", handle=owner.handle, status="pending", audience="mutuals"
    )
    challenge = Challenge.objects.create(
        user=owner, digits=["1"], turns=["left"], expires_at=timezone.now(), cameo=cameo
    )
    check = RecordingCheck.objects.create(cameo=cameo, challenge=challenge)
    RecordingCheck.objects.filter(pk=check.pk).update(
        created_at=timezone.now() - age, finished_at=timezone.now() if finished else None
    )
    return check


def test_a_stalled_verification_is_sent_again_once(alice, bob, cpu_queue):
    stalled = _check(alice, age=dt.timedelta(minutes=11))
    recent = _check(bob, age=dt.timedelta(minutes=1))
    assert sweep()["resent"] == 1
    assert [t["task"] for t in tasks_carrying(cpu_queue, str(stalled.pk))] == [
        "cameo.verify_recording"
    ]
    assert tasks_carrying(cpu_queue, str(recent.pk)) == []
    assert sweep()["resent"] == 0  # not again within the period


def test_finished_verifications_are_left_alone(alice, cpu_queue):
    _check(alice, age=dt.timedelta(hours=1), finished=True)
    assert sweep()["resent"] == 0


def test_expired_unused_challenges_are_forgotten(alice):
    now = timezone.now()
    old = Challenge.objects.create(
        user=alice, digits=["1"], turns=["left"], expires_at=now - dt.timedelta(days=2)
    )
    fresh = Challenge.objects.create(
        user=alice, digits=["1"], turns=["left"], expires_at=now - dt.timedelta(hours=1)
    )
    assert sweep()["challenges_purged"] == 1
    assert list(Challenge.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not Challenge.objects.filter(pk=old.pk).exists()
