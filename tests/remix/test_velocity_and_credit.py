"""Remix velocity (time-decayed remixes per hour, per clip and per original) and the credit a
parent's creator gets: a notification, stored and pushed."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.utils import timezone

from accounts.models import Notification
from generation.models import ClipAudience
from remix.selectors import trending_originals, velocities
from remix.services import lineage_record
from tests.factories import UserFactory
from tests.remix.helpers import make_clip

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def _half_life(settings):
    settings.REMIX_VELOCITY_HALF_LIFE_HOURS = 6


def _remix_at(parent, at):
    child = make_clip(UserFactory())  # a clip without a parent column, recorded at ``at``
    lineage_record(job_id=child.job_id, parent_job_ids=[parent.job_id], kind="remix", at=at)
    return child


def test_velocity_decays_by_half_every_half_life_per_clip_and_per_original():
    t0 = timezone.now() - 24 * HOUR
    original = make_clip(UserFactory())
    b = _remix_at(original, t0)
    _remix_at(original, t0)
    _remix_at(b, t0)
    rate = math.log(2) / 6  # one remix, just now, in remixes per hour
    at_t0 = velocities(job_ids=[original.job_id, b.job_id], now=t0)
    assert at_t0[original.job_id]["remixes_per_hour"] == pytest.approx(2 * rate)
    assert at_t0[original.job_id]["tree_remixes_per_hour"] == pytest.approx(3 * rate)
    assert at_t0[b.job_id]["remixes_per_hour"] == pytest.approx(rate)
    assert at_t0[b.job_id]["tree_remixes_per_hour"] == pytest.approx(3 * rate)
    later = velocities(job_ids=[original.job_id], now=t0 + 6 * HOUR)[original.job_id]
    assert later["remixes_per_hour"] == pytest.approx(rate)
    assert later["tree_remixes_per_hour"] == pytest.approx(1.5 * rate)
    # A new remix adds one to the aged count.
    _remix_at(original, t0 + 12 * HOUR)
    now = velocities(job_ids=[original.job_id], now=t0 + 12 * HOUR)[original.job_id]
    assert now["remixes_per_hour"] == pytest.approx((2 / 4 + 1) * rate)
    assert now["tree_remixes_per_hour"] == pytest.approx((3 / 4 + 1) * rate)
    quiet = make_clip(UserFactory())
    assert velocities(job_ids=[quiet.job_id], now=t0) == {
        quiet.job_id: {"remixes_per_hour": 0.0, "tree_remixes_per_hour": 0.0}
    }


def test_trending_originals_rank_by_current_decayed_rate_and_respect_visibility():
    now = timezone.now()
    old_hit, fresh, hidden = (make_clip(UserFactory()) for _ in range(3))
    for _ in range(3):
        _remix_at(old_hit, now - 12 * HOUR)  # 3 remixes, aged two half-lives: 0.75
    _remix_at(fresh, now)  # 1 remix now: 1
    for _ in range(5):
        _remix_at(hidden, now)
    hidden.audience = ClipAudience.ONLY_ME
    hidden.save(update_fields=["audience"])
    ranked = trending_originals(user=UserFactory(), limit=10)
    assert [clip.pk for clip, _ in ranked] == [fresh.pk, old_hit.pk]
    assert ranked[0][1] == pytest.approx(math.log(2) / 6, rel=1e-3)
    assert [clip.pk for clip, _ in trending_originals(user=hidden.user, limit=1)] == [hidden.pk]


def test_the_parent_creator_is_notified_of_a_remix_but_not_of_their_own(
    django_capture_on_commit_callbacks,
):
    alice, bob = UserFactory(), UserFactory()
    original = make_clip(alice)
    with django_capture_on_commit_callbacks() as callbacks:
        remix = make_clip(bob, parent=original)
    note = Notification.objects.get(user=alice)
    assert (note.kind, note.actor) == ("remix.created", bob)
    assert note.data == {
        "video_id": remix.job.public_id,
        "parent_video_id": original.job.public_id,
        "kind": "remix",
    }
    assert len(callbacks) == 1  # the WebSocket push, sent once committed
    make_clip(alice, parent=original)
    assert Notification.objects.filter(user=alice).count() == 1


def test_credits_for_a_page_of_posts_name_visible_parent_and_original_in_fixed_queries(
    django_assert_num_queries,
):
    from remix.selectors import lineage_credits

    alice, bob, viewer = UserFactory(), UserFactory(), UserFactory()
    original = make_clip(alice)
    middle = make_clip(bob, parent=original, audience=ClipAudience.ONLY_ME)
    leaf = make_clip(alice, parent=middle)
    sibling = make_clip(bob, parent=original)
    lonely = make_clip(bob)
    page = [leaf.job_id, sibling.job_id, lonely.job_id, original.job_id]
    with django_assert_num_queries(2):
        credits = lineage_credits(job_ids=page, user=viewer)
    assert credits[leaf.job_id]["parent"] is None  # bob's draft: not revealed
    assert credits[leaf.job_id]["original"].pk == original.pk
    assert credits[sibling.job_id]["parent"].pk == original.pk
    assert credits[sibling.job_id]["original"].pk == original.pk
    assert credits[lonely.job_id] == {"parent": None, "original": None}
    assert credits[original.job_id] == {"parent": None, "original": None}
