"""Stitches: one clip joining several, every one of them a parent. The remix rules hold for
each clip joined, a cameo in any of them is re-checked for the stitcher, the lineage gets one
edge per parent, and a takedown of any parent stops a stitch still rendering."""

from __future__ import annotations

import pytest
from django.db import transaction

from accounts.models import Notification
from accounts.services import user_block
from generation.gates import COMPLETE, GateRefused
from generation.models import Clip, ClipAudience, GenerationJob, JobKind, JobStatus
from generation.services import clip_remove
from remix.gates import lineage_gate
from remix.models import EdgeKind, LineageEdge
from remix.services import takedown_policy
from tests.factories import UserFactory, clip_row_fields
from tests.fixtures import client_for
from tests.remix.helpers import make_clip, node
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db

STITCH = "/api/v1/generations/stitch"


@pytest.fixture(autouse=True)
def _lineage_gate_only(settings):
    settings.GENERATION_GATES = ["remix.gates.lineage_gate"]


@pytest.fixture
def alice():
    return UserFactory()


@pytest.fixture
def bob():
    return UserFactory()


def _stitch(client, clips, prompt="and they all meet at sunset", **extra):
    body = {"videos": [c.job.public_id for c in clips], "prompt": prompt, **extra}
    return client.post(STITCH, body, format="json")


def _job(response) -> GenerationJob:
    assert response.status_code == 201, response.content
    [item] = response.json()["data"]
    return GenerationJob.objects.get(pk=item["id"].removeprefix("video_"))


def test_a_stitch_joins_the_clips_shots_in_order_each_a_parent(alice, bob):
    first = make_clip(alice, prompt="a red ball bounces")
    second = make_clip(bob, prompt="a blue kite flies")
    response = _stitch(client_for(bob), [first, second], seconds=4)
    job = _job(response)
    body = response.json()["data"][0]
    assert body["parent_id"] == first.job.public_id
    assert body["parent_ids"] == [first.job.public_id, second.job.public_id]
    assert job.kind == JobKind.STITCH and job.parent_id == first.job_id
    assert job.parent_ids == [first.job_id, second.job_id]
    assert [shot["prompt"] for shot in job.params["storyboard"]] == [
        "a red ball bounces",
        "a blue kite flies",
        "and they all meet at sunset",
    ]
    assert job.seconds == 1 + 1 + 4 and (job.model, job.size) == (first.job.model, "512x512")
    assert job.annotations["lineage"] == {"parents": [first.job.public_id, second.job.public_id]}


def test_without_seconds_there_is_no_closing_shot(alice):
    clips = [make_clip(alice, prompt=f"shot {n}") for n in range(3)]
    job = _job(_stitch(client_for(alice), clips))
    assert [s["prompt"] for s in job.params["storyboard"]] == ["shot 0", "shot 1", "shot 2"]
    assert job.seconds == 3


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"videos": ["video_x"], "prompt": "p"}, 400, "min_length", "videos"),
        ({"videos": "not a list", "prompt": "p"}, 400, "not_a_list", "videos"),
        ({"prompt": "p"}, 400, "required", "videos"),
        ({"videos": ["{a}", "{b}"]}, 400, "required", "prompt"),
        ({"videos": ["{a}", "{b}"], "prompt": "  "}, 400, "invalid_prompt", "prompt"),
        ({"videos": ["{a}", "{a}"], "prompt": "p"}, 400, "duplicate_video", "videos"),
        (
            {"videos": ["{a}", "{b}"], "prompt": "p", "seconds": 5},
            400,
            "invalid_seconds",
            "seconds",
        ),
        ({"videos": ["{a}", "{b}"] * 3, "prompt": "p"}, 400, "invalid_videos", "videos"),
        ({"videos": ["{a}", "video_nope"], "prompt": "p"}, 404, "video_not_found", "video_id"),
    ],
    ids=[
        "one",
        "not-a-list",
        "missing-videos",
        "missing-prompt",
        "blank-prompt",
        "duplicate",
        "bad-seconds",
        "too-many",
        "unknown",
    ],
)
def test_malformed_stitches_are_refused_and_write_nothing(alice, body, status, code, param):
    a, b = make_clip(alice), make_clip(alice)
    ids = {"{a}": a.job.public_id, "{b}": b.job.public_id}
    if isinstance(body.get("videos"), list):
        body = {**body, "videos": [ids.get(v, v) for v in body["videos"]]}
    before = GenerationJob.objects.count()
    response = client_for(alice).post(STITCH, body, format="json")
    assert_error(response, status, code=code, param=param)
    assert GenerationJob.objects.count() == before


def test_too_many_clips_is_refused_even_when_each_is_valid(alice, settings):
    settings.GENERATION_STITCH_MAX_PARENTS = 2
    clips = [make_clip(alice) for _ in range(3)]
    assert_error(_stitch(client_for(alice), clips), 400, code="invalid_videos", param="videos")


def test_an_anonymous_caller_cannot_stitch(alice):
    a, b = make_clip(alice), make_clip(alice)
    from rest_framework.test import APIClient

    assert_error(_stitch(APIClient(), [a, b]), 401, code="not_authenticated")


def _hidden(owner):
    return make_clip(owner, audience=ClipAudience.ONLY_ME)


@pytest.mark.parametrize(
    ("spoil", "status", "code"),
    [
        (lambda clip, owner, stitcher: _hidden(owner), 404, "video_not_found"),
        (
            lambda clip, owner, stitcher: make_clip(owner, allow_remix=False),
            403,
            "remix_not_allowed",
        ),
        (
            lambda clip, owner, stitcher: (
                clip_remove(clip=clip, actor="staff:1", reason="policy", code="policy") and clip
            ),
            409,
            "parent_removed",
        ),
        (
            # A block hides the clip: it is a plain 404, as for any clip the caller cannot see.
            lambda clip, owner, stitcher: (user_block(blocker=owner, blocked=stitcher), clip)[1],
            404,
            "video_not_found",
        ),
    ],
    ids=["not-visible", "remixes-off", "removed", "blocked"],
)
def test_every_clip_joined_must_be_remixable_by_the_stitcher(alice, bob, spoil, status, code):
    carol = UserFactory()
    fine = make_clip(carol)
    second = spoil(make_clip(alice), alice, bob)
    before = GenerationJob.objects.count()
    # The bad clip is second: the check covers every parent, not only the first.
    response = _stitch(client_for(bob), [fine, second])
    assert_error(response, status, code=code, param="video_id" if status == 404 else None)
    assert GenerationJob.objects.count() == before


def test_a_parent_taken_down_while_the_stitch_renders_refuses_it_at_completion(alice, bob):
    first, second = make_clip(alice), make_clip(alice)
    job = _job(_stitch(client_for(bob), [first, second]))
    lineage_gate(job, COMPLETE)  # still fine
    clip_remove(clip=Clip.objects.get(pk=second.pk), actor="staff:1", reason="r", code="policy")
    with pytest.raises(GateRefused) as refused:
        lineage_gate(job, COMPLETE)
    assert refused.value.code == "parent_removed"


def test_a_policy_takedown_of_any_parent_stops_an_unfinished_stitch(alice, bob):
    first, second = make_clip(alice), make_clip(alice)
    job = _job(_stitch(client_for(bob), [first, second]))
    other = _job(_stitch(client_for(bob), [make_clip(alice), make_clip(alice)]))
    takedown_policy(clip=Clip.objects.get(pk=second.pk), actor="staff:1", reason="policy")
    job.refresh_from_db()
    other.refresh_from_db()
    assert job.status == JobStatus.BLOCKED and job.error_code == "parent_removed"
    assert second.job.public_id in job.error_message
    assert other.status == JobStatus.QUEUED


def _store_clip(job: GenerationJob) -> Clip:
    """The stitch's clip, stored the way the worker stores it (the lineage receiver runs)."""
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED)
    with transaction.atomic():
        return Clip.objects.create(
            **clip_row_fields(),
            job=job,
            user=job.user,
            duration_s=job.seconds,
            width=512,
            height=512,
            bytes=1,
            sha256="0" * 64,
        )


def test_a_stored_stitch_has_an_edge_from_every_parent_and_credits_each_creator_once(alice, bob):
    carol = UserFactory()
    a1, a2, c1 = make_clip(alice), make_clip(alice), make_clip(carol)
    job = _job(_stitch(client_for(bob), [a1, c1, a2]))
    _store_clip(job)
    edges = LineageEdge.objects.filter(child__job_id=job.pk).order_by("id")
    assert [(e.parent.job_id, e.kind) for e in edges] == [
        (a1.job_id, EdgeKind.STITCH),
        (c1.job_id, EdgeKind.STITCH),
        (a2.job_id, EdgeKind.STITCH),
    ]
    for parent in (a1, c1, a2):
        assert node(parent).children_count == 1 and node(parent).descendants_count == 1
    assert Notification.objects.filter(user=alice, kind="remix.created").count() == 1
    assert Notification.objects.filter(user=carol, kind="remix.created").count() == 1
    assert not Notification.objects.filter(user=bob, kind="remix.created").exists()
