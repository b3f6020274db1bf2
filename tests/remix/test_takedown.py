"""Takedowns follow the graph: a policy removal queues the descendants for review (they stay
up); a cameo owner's takedown removes the descendants that still show the cameo."""

from __future__ import annotations

import pytest

from generation.models import GenerationJob, JobStage, JobStatus
from remix.services import takedown_cameo, takedown_policy
from remix.signals import descendants_need_review
from tests.factories import UserFactory
from tests.remix.helpers import make_clip

pytestmark = pytest.mark.django_db


@pytest.fixture
def received():
    calls = []

    def receiver(sender, **kwargs):
        calls.append(kwargs)

    descendants_need_review.connect(receiver, dispatch_uid="test-receiver")
    yield calls
    descendants_need_review.disconnect(dispatch_uid="test-receiver")


def test_policy_takedown_removes_the_clip_and_queues_its_live_descendants(received):
    alice, bob = UserFactory(), UserFactory()
    a = make_clip(alice)
    b = make_clip(bob, parent=a)
    c = make_clip(alice, parent=b)
    gone = make_clip(bob, parent=a)
    gone.removed_at = gone.created_at
    gone.save(update_fields=["removed_at"])
    unrelated = make_clip(alice)
    in_flight = GenerationJob.objects.create(
        user=bob,
        kind="remix",
        prompt="p",
        model="sora-2",
        engine="previs",
        seconds=1,
        size="512x512",
        seed=1,
        params={},
        params_hash="0" * 64,
        parent=a.job,
    )
    descendants = takedown_policy(clip=a, actor="staff:9", reason="graphic violence", code="policy")
    assert [d.pk for d in descendants] == [b.pk, c.pk]  # live ones only, oldest first
    a.refresh_from_db()
    assert a.removed_at is not None and a.removal_reason.startswith("policy")
    for clip in (b, c, unrelated):
        clip.refresh_from_db()
        assert clip.removed_at is None
    assert len(received) == 1
    call = received[0]
    assert call["clip"].pk == a.pk
    assert {d.pk for d in call["descendants"]} == {b.pk, c.pk}
    assert (call["reason"], call["actor"]) == ("graphic violence", "staff:9")
    in_flight.refresh_from_db()
    assert (in_flight.status, in_flight.stage) == (JobStatus.BLOCKED, JobStage.DONE)
    assert in_flight.error_code == "parent_removed"


def test_a_receiver_failure_rolls_the_takedown_back():
    a = make_clip(UserFactory())
    make_clip(UserFactory(), parent=a)

    def broken(sender, **kwargs):
        raise RuntimeError("queue unavailable")

    descendants_need_review.connect(broken, dispatch_uid="broken")
    try:
        with pytest.raises(RuntimeError):
            takedown_policy(clip=a, actor="staff:1", reason="x")
    finally:
        descendants_need_review.disconnect(dispatch_uid="broken")
    a.refresh_from_db()
    assert a.removed_at is None


def test_cameo_takedown_removes_descendants_that_still_show_the_cameo():
    owner_user, remixer = UserFactory(), UserFactory()
    a = make_clip(remixer, cameos=["cameo_x"])
    keeps = make_clip(remixer, parent=a, cameos=["cameo_x", "cameo_y"])
    swapped = make_clip(remixer, parent=a, cameos=["cameo_y"])
    below_swap = make_clip(remixer, parent=swapped, cameos=["cameo_x"])
    untouched = make_clip(owner_user, cameos=["cameo_x"])
    removed = takedown_cameo(clips=[a], cameo_id="cameo_x", actor="user:5", reason="revoked")
    assert {c.pk for c in removed} == {a.pk, keeps.pk, below_swap.pk}
    for clip, gone in ((a, True), (keeps, True), (swapped, False), (below_swap, True)):
        clip.refresh_from_db()
        assert (clip.removed_at is not None) == gone
    untouched.refresh_from_db()
    assert untouched.removed_at is None
    # Running it again removes nothing new.
    again = takedown_cameo(clips=[a], cameo_id="cameo_x", actor="user:5", reason="revoked")
    assert [c.pk for c in again] == [a.pk]
