"""The remix rules, through the API that creates derived jobs and at completion: who may remix
which clip, and the reason given when not. A refusal writes nothing."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.services import user_block
from generation.gates import COMPLETE, GateRefused
from generation.models import ClipAudience, GenerationJob, JobStatus
from generation.services import clip_remove
from remix.gates import lineage_gate
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.remix.helpers import make_clip
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _lineage_gate_only(settings):
    settings.GENERATION_GATES = ["remix.gates.lineage_gate"]


@pytest.fixture
def alice():
    return UserFactory()


@pytest.fixture
def bob():
    return UserFactory()


def _remix(client, clip, prompt="a blue ball bouncing"):
    return client.post(f"/v1/videos/{clip.job.public_id}/remix", {"prompt": prompt}, format="json")


def test_anyone_who_sees_a_public_clip_may_remix_it(alice, bob):
    clip = make_clip(alice)
    response = _remix(client_for(bob), clip)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["remixed_from_video_id"] == clip.job.public_id
    job = GenerationJob.objects.get(pk=body["id"].removeprefix("video_"))
    assert job.user == bob and job.parent_id == clip.job_id
    assert job.annotations["lineage"] == {"parents": [clip.job.public_id]}


@pytest.mark.parametrize(
    "path", ["/v1/videos/extensions", "/v1/videos/edits"], ids=["extension", "edit"]
)
def test_extensions_and_edits_of_a_visible_clip_follow_the_same_rule(alice, bob, path):
    clip = make_clip(alice)
    body = {"prompt": "and then it rains", "video": {"id": clip.job.public_id}}
    response = client_for(bob).post(path, body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["remixed_from_video_id"] == clip.job.public_id


def test_a_followers_only_clip_is_remixable_by_followers_only(alice, bob):
    from accounts.services import user_follow

    clip = make_clip(alice, audience=ClipAudience.FOLLOWERS)
    assert_error(_remix(client_for(bob), clip), 404, code="video_not_found", param="video_id")
    user_follow(follower=bob, followee=alice)
    assert _remix(client_for(bob), clip).status_code == 200


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"audience": ClipAudience.ONLY_ME}, 404, "video_not_found"),
        ({"allow_remix": False}, 403, "remix_not_allowed"),
        ({"removed_at": timezone.now()}, 409, "parent_removed"),
        ({"held_at": timezone.now()}, 404, "video_not_found"),
    ],
    ids=["draft", "remixes-off", "removed", "held"],
)
def test_refusals_say_why_and_write_nothing(alice, bob, change, status, code):
    clip = make_clip(alice, **change)
    before = GenerationJob.objects.count()
    param = "video_id" if code == "video_not_found" else None
    assert_error(_remix(client_for(bob), clip), status, code=code, param=param)
    assert GenerationJob.objects.count() == before


def test_blocks_win_both_ways(alice, bob):
    clip = make_clip(alice)
    user_block(blocker=alice, blocked=bob)
    assert_error(_remix(client_for(bob), clip), 404, code="video_not_found", param="video_id")
    theirs = make_clip(bob)
    assert_error(_remix(client_for(alice), theirs), 404, code="video_not_found", param="video_id")


def test_the_creator_may_remix_their_own_clip_with_remixes_off_but_not_once_held(alice):
    clip = make_clip(alice, allow_remix=False, audience=ClipAudience.ONLY_ME)
    assert _remix(client_for(alice), clip).status_code == 200
    clip.held_at = timezone.now()
    clip.save(update_fields=["held_at"])
    assert_error(_remix(client_for(alice), clip), 409, code="parent_under_review")


def test_an_unknown_or_malformed_id_is_a_404_and_a_bad_body_a_400(bob):
    client = client_for(bob)
    response = client.post("/v1/videos/video_0000/remix", {"prompt": "x"}, format="json")
    assert_error(response, 404, code="video_not_found", param="video_id")
    clip = make_clip(UserFactory())
    response = client.post(f"/v1/videos/{clip.job.public_id}/remix", {}, format="json")
    assert response.status_code == 400
    assert GenerationJob.objects.filter(user=bob).count() == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("remove", "parent_removed"),
        ("hold", "parent_under_review"),
        ("close", "remix_not_allowed"),
        ("hide", "parent_not_visible"),
        ("block", "remix_blocked"),
    ],
)
def test_the_rules_are_checked_again_at_completion(alice, bob, change, code):
    clip = make_clip(alice)
    body = _remix(client_for(bob), clip).json()
    job = GenerationJob.objects.get(pk=body["id"].removeprefix("video_"))
    lineage_gate(job, COMPLETE)  # still allowed
    if change == "remove":
        clip_remove(clip=clip, actor="staff:1", reason="policy", code="policy")
        clip.refresh_from_db()
    elif change == "hold":
        clip.held_at = timezone.now()
    elif change == "close":
        clip.allow_remix = False
    elif change == "hide":
        clip.audience = ClipAudience.ONLY_ME
    else:
        user_block(blocker=alice, blocked=bob)
    clip.save()
    with pytest.raises(GateRefused) as refused:
        lineage_gate(job, COMPLETE)
    assert refused.value.code == code
    assert job.status == JobStatus.QUEUED
