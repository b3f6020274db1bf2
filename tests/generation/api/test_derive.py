"""POST /api/v1/generations/{id}/derive: the native remix, extension and edit, under the same
lineage rules as the OpenAI shape's endpoints."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from generation.models import ClipAudience, GenerationJob, JobKind
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.remix.helpers import make_clip
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db


def _derive(api, clip, **body):
    return api.post(f"/api/v1/generations/{clip.job.public_id}/derive", body, format="json")


def test_a_remix_of_a_visible_clip_is_a_native_generation_with_its_parent():
    owner, remixer = UserFactory(), UserFactory()
    clip = make_clip(owner, audience=ClipAudience.PUBLIC)
    response = _derive(client_for(remixer), clip, prompt="now in the snow")
    assert response.status_code == 201, response.content
    (generation,) = response.json()["data"]
    assert generation["kind"] == "remix" and generation["parent_id"] == clip.job.public_id
    job = GenerationJob.objects.get(pk=generation["id"].removeprefix("video_"))
    assert job.user == remixer and job.parent_id == clip.job_id


def test_an_extension_adds_seconds_and_an_edit_keeps_the_seed():
    owner = UserFactory()
    clip = make_clip(owner)
    api = client_for(owner)
    extended = _derive(api, clip, kind="extend", prompt="it rolls away", seconds=4)
    assert extended.status_code == 201, extended.content
    assert extended.json()["data"][0]["seconds"] == clip.job.seconds + 4
    edited = _derive(api, clip, kind="edit", prompt="make the ball blue")
    assert edited.status_code == 201, edited.content
    job = GenerationJob.objects.get(pk=edited.json()["data"][0]["id"].removeprefix("video_"))
    assert job.kind == JobKind.EDIT and job.seed == clip.job.seed


def test_malformed_requests_are_refused_and_write_nothing():
    owner = UserFactory()
    clip = make_clip(owner)
    api = client_for(owner)
    before = GenerationJob.objects.count()
    assert_error(
        _derive(api, clip, kind="stitch", prompt="x"), 400, code="invalid_choice", param="kind"
    )
    assert_error(
        _derive(api, clip, prompt="x", seconds=4), 400, code="invalid_seconds", param="seconds"
    )
    assert_error(
        _derive(api, clip, kind="extend", prompt="x", seconds=7),
        400,
        code="invalid_seconds",
        param="seconds",
    )
    assert GenerationJob.objects.count() == before


def test_who_may_not_derive():
    owner, stranger = UserFactory(), UserFactory()
    draft = make_clip(owner, audience=ClipAudience.ONLY_ME)
    assert_error(
        _derive(client_for(stranger), draft, prompt="x"),
        404,
        code="video_not_found",
        param="video_id",
    )
    closed = make_clip(owner, audience=ClipAudience.PUBLIC, allow_remix=False)
    assert_error(_derive(client_for(stranger), closed, prompt="x"), 403, code="remix_not_allowed")
    response = APIClient().post(
        f"/api/v1/generations/{closed.job.public_id}/derive", {"prompt": "x"}, format="json"
    )
    assert response.status_code == 401
