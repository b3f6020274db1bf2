"""generation.selectors.clip_visible_to and clips_visible_q: one visibility rule, in Python and
as a filter, agreeing on every case."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from accounts.services import user_block, user_follow
from generation.models import Clip, ClipAudience, GenerationJob, JobStage, JobStatus
from generation.selectors import clip_visible_to, clips_visible_q
from tests.factories import TeenFactory, UserFactory, clip_row_fields

pytestmark = pytest.mark.django_db


def _clip(owner, **fields) -> Clip:
    job = GenerationJob.objects.create(
        user=owner,
        prompt="p",
        model="sora-2",
        engine="previs",
        seconds=2,
        size="512x512",
        seed=1,
        params={},
        params_hash="0" * 64,
        status=JobStatus.COMPLETED,
        stage=JobStage.DONE,
    )
    return Clip.objects.create(
        **clip_row_fields(),
        job=job,
        user=owner,
        duration_s=2,
        width=512,
        height=512,
        bytes=1,
        sha256="0" * 64,
        **fields,
    )


@pytest.fixture
def people():
    owner = UserFactory()
    follower, stranger, blocked, staff = (UserFactory() for _ in range(4))
    staff.is_staff = True
    staff.save()
    teen = TeenFactory()
    user_follow(follower=follower, followee=owner)
    user_follow(follower=teen, followee=owner)
    user_block(blocker=owner, blocked=blocked)
    return {
        "owner": owner,
        "follower": follower,
        "stranger": stranger,
        "blocked": blocked,
        "staff": staff,
        "teen": teen,
        "anonymous": AnonymousUser(),
    }


VIEWERS = ["owner", "follower", "stranger", "blocked", "staff", "teen", "anonymous"]
CASES = {
    # clip state -> viewers who see it
    "draft": ({}, {"owner", "staff"}),
    "public": ({"audience": ClipAudience.PUBLIC}, set(VIEWERS) - {"blocked"}),
    "followers": ({"audience": ClipAudience.FOLLOWERS}, {"owner", "follower", "staff", "teen"}),
    "held": ({"audience": ClipAudience.PUBLIC, "held_at": timezone.now()}, {"owner", "staff"}),
    "age_restricted": (
        {"audience": ClipAudience.PUBLIC, "age_restricted": True},
        {"owner", "follower", "stranger", "staff"},
    ),
    "removed": ({"audience": ClipAudience.PUBLIC, "removed_at": timezone.now()}, set()),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_who_sees_a_clip(people, case):
    fields, expected = CASES[case]
    clip = _clip(people["owner"], **fields)
    seen = {name for name in VIEWERS if clip_visible_to(clip=clip, user=people[name])}
    assert seen == expected
    # The filter form agrees with the function for every viewer.
    for name in VIEWERS:
        listed = Clip.objects.filter(clips_visible_q(people[name]), pk=clip.pk).exists()
        assert listed == (name in expected), name


def test_a_deleted_job_hides_its_clip_from_everyone(people):
    clip = _clip(people["owner"], audience=ClipAudience.PUBLIC)
    GenerationJob.objects.filter(pk=clip.job_id).update(deleted_at=timezone.now())
    clip.refresh_from_db()
    assert not any(clip_visible_to(clip=clip, user=people[name]) for name in VIEWERS)
