"""The OpenAI-shaped /v1/videos endpoints: validation, ownership, quotas, idempotency.

These tests create jobs without a worker running; the render path has its own tests.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from generation.models import GenerationJob, JobStage, JobStatus
from tests.fixtures import client_for
from tests.generation.api.helpers import assert_error, generation_state, png_bytes, upload

pytestmark = pytest.mark.django_db


def test_create_returns_a_queued_video_in_the_openai_shape(api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            "/v1/videos",
            {
                "prompt": "a red ball bouncing on a beach at sunset",
                "seconds": "4",
                "size": "720x1280",
            },
            format="multipart",
        )
    assert response.status_code == 200, response.content
    body = response.json()
    job = GenerationJob.objects.get()
    assert body == {
        "id": f"video_{job.id.hex}",
        "object": "video",
        "created_at": int(job.created_at.timestamp()),
        "completed_at": None,
        "expires_at": None,
        "error": None,
        "model": "sora-2",
        "progress": 0,
        "prompt": "a red ball bouncing on a beach at sunset",
        "remixed_from_video_id": None,
        "seconds": "4",
        "size": "720x1280",
        "status": "queued",
    }
    assert response["openai-poll-after-ms"] == "500"
    assert job.engine == "previs" and job.user == api.user
    assert job.status == JobStatus.QUEUED and job.stage == JobStage.QUEUED
    assert len(job.params_hash) == 64
    assert list(job.events.values_list("detail", flat=True)) == [{"action": "created"}]
    # The render task is sent only once the job row is committed.
    assert len(callbacks) == 1


def test_create_accepts_json_too(api):
    response = api.post("/v1/videos", {"prompt": "a blue cube slides"}, format="json")
    assert response.status_code == 200
    assert response.json()["seconds"] == "4" and response.json()["size"] == "720x1280"


@pytest.mark.parametrize(
    ("payload", "code", "param"),
    [
        ({"prompt": "x", "size": "640x480"}, "invalid_size", "size"),
        ({"prompt": "x", "seconds": "5"}, "invalid_seconds", "seconds"),
        ({"prompt": "x", "seconds": "0"}, "invalid_seconds", "seconds"),
        ({"prompt": "x", "seconds": "four"}, "invalid_seconds", "seconds"),
        ({"prompt": "x", "model": "dall-e"}, "invalid_model", "model"),
        ({"prompt": "   "}, "invalid_prompt", "prompt"),
        ({"prompt": "x" * 2001}, "prompt_too_long", "prompt"),
        ({}, "required", "prompt"),
    ],
)
def test_bad_requests_get_a_400_and_create_nothing(api, payload, code, param):
    before = generation_state()
    response = api.post("/v1/videos", payload, format="multipart")
    assert_error(response, 400, code=code, param=param)
    assert generation_state() == before


def test_input_reference_must_be_an_image(api):
    before = generation_state()
    bad = upload("ref.png", b"this is not an image at all")
    response = api.post("/v1/videos", {"prompt": "x", "input_reference": bad}, format="multipart")
    assert_error(response, 400, code="invalid_image", param="input_reference")
    assert generation_state() == before


@override_settings(GENERATION_MAX_REFERENCE_BYTES=1000)
def test_an_oversized_input_reference_gets_413(api):
    big = upload("ref.png", png_bytes(size=(400, 400)) + b"\0" * 2000)
    before = generation_state()
    response = api.post("/v1/videos", {"prompt": "x", "input_reference": big}, format="multipart")
    assert_error(response, 413, code="request_too_large", param="input_reference")
    assert generation_state() == before


def test_a_valid_input_reference_is_stored_with_the_job(api):
    response = api.post(
        "/v1/videos",
        {"prompt": "a ball", "input_reference": upload("ref.png", png_bytes())},
        format="multipart",
    )
    assert response.status_code == 200
    job = GenerationJob.objects.get()
    assert job.input_reference.name.startswith("references/")
    assert len(job.params["input_reference_sha256"]) == 64


def test_another_users_video_is_not_found(api, other_user):
    other = client_for(other_user)
    created = other.post("/v1/videos", {"prompt": "mine"}, format="json").json()
    for method, path in [
        ("get", f"/v1/videos/{created['id']}"),
        ("delete", f"/v1/videos/{created['id']}"),
        ("get", f"/v1/videos/{created['id']}/content"),
        ("post", f"/v1/videos/{created['id']}/remix"),
    ]:
        response = getattr(api, method)(path, {"prompt": "steal"} if method == "post" else None)
        assert_error(response, 404, code="video_not_found", param="video_id")
    assert GenerationJob.objects.get().deleted_at is None


def test_unknown_and_malformed_ids_are_404(api):
    assert_error(api.get("/v1/videos/video_nope"), 404, code="video_not_found", param="video_id")
    assert_error(
        api.get("/v1/videos/video_0190a0f2c3d47e8f9a0b1c2d3e4f5a6b"),
        404,
        code="video_not_found",
        param="video_id",
    )


def test_list_pages_with_after_and_order(api):
    ids = [
        api.post("/v1/videos", {"prompt": f"p{i}"}, format="json").json()["id"] for i in range(3)
    ]
    first = api.get("/v1/videos", {"limit": 2}).json()
    assert [v["id"] for v in first["data"]] == [ids[2], ids[1]]
    assert first["has_more"] is True and first["last_id"] == ids[1]
    second = api.get("/v1/videos", {"limit": 2, "after": first["last_id"]}).json()
    assert [v["id"] for v in second["data"]] == [ids[0]] and second["has_more"] is False
    ascending = api.get("/v1/videos", {"order": "asc"}).json()
    assert [v["id"] for v in ascending["data"]] == ids
    assert_error(api.get("/v1/videos", {"order": "up"}), 400, code="invalid_order", param="order")


def test_content_of_an_unfinished_video_is_404(api):
    created = api.post("/v1/videos", {"prompt": "p"}, format="json").json()
    response = api.get(f"/v1/videos/{created['id']}/content")
    assert_error(response, 404, code="video_not_ready", param="video_id")
    response = api.get(f"/v1/videos/{created['id']}/content", {"variant": "gif"})
    assert_error(response, 400, code="invalid_variant", param="variant")


def test_delete_hides_the_video_and_stops_it(api):
    created = api.post("/v1/videos", {"prompt": "p"}, format="json").json()
    response = api.delete(f"/v1/videos/{created['id']}")
    assert response.json() == {"id": created["id"], "object": "video.deleted", "deleted": True}
    job = GenerationJob.objects.get()
    assert job.deleted_at is not None and job.status == JobStatus.CANCELLED
    assert_error(
        api.get(f"/v1/videos/{created['id']}"), 404, code="video_not_found", param="video_id"
    )


def test_remix_of_an_unfinished_video_is_refused(api):
    created = api.post("/v1/videos", {"prompt": "p"}, format="json").json()
    before = generation_state()
    response = api.post(f"/v1/videos/{created['id']}/remix", {"prompt": "q"}, format="json")
    assert_error(response, 400, code="video_not_completed", param="video")
    assert generation_state() == before


def test_extensions_and_edits_need_a_video_reference(api):
    for path in ("/v1/videos/extensions", "/v1/videos/edits"):
        response = api.post(path, {"prompt": "more", "seconds": "4"}, format="multipart")
        assert_error(response, 400, code="missing_video", param="video")


def test_cameo_mentions_are_refused_without_a_consent_gate(api, settings):
    settings.GENERATION_GATES = []
    before = generation_state()
    response = api.post("/v1/videos", {"prompt": "@someone dancing"}, format="json")
    assert_error(response, 403, code="cameos_unavailable", param="prompt")
    assert generation_state() == before


def test_unauthenticated_requests_are_refused(anon_client):
    response = anon_client.post("/v1/videos", {"prompt": "p"}, format="json")
    assert_error(response, 401, code="not_authenticated")


@override_settings(
    GENERATION_QUOTAS={
        "adult": {"daily": 100, "concurrent": 2},
        "teen": {"daily": 1, "concurrent": 1},
    }
)
def test_concurrent_quota_answers_429_with_retry_after(api):
    for _ in range(2):
        assert api.post("/v1/videos", {"prompt": "p"}, format="json").status_code == 200
    before = generation_state()
    response = api.post("/v1/videos", {"prompt": "p"}, format="json")
    assert_error(response, 429, code="concurrent_limit_exceeded")
    assert int(response["Retry-After"]) >= 1
    assert generation_state() == before


@override_settings(
    GENERATION_QUOTAS={
        "adult": {"daily": 100, "concurrent": 5},
        "teen": {"daily": 1, "concurrent": 5},
    }
)
def test_teens_have_a_stricter_daily_quota_and_system_failures_do_not_count(teen):
    client = client_for(teen)
    assert client.post("/v1/videos", {"prompt": "p"}, format="json").status_code == 200
    response = client.post("/v1/videos", {"prompt": "p"}, format="json")
    assert_error(response, 429, code="daily_limit_exceeded")
    assert int(response["Retry-After"]) > 3600
    # The first job fails for the system's fault: it stops counting.
    GenerationJob.objects.update(
        status=JobStatus.FAILED, stage=JobStage.DONE, counts_against_quota=False
    )
    assert client.post("/v1/videos", {"prompt": "p"}, format="json").status_code == 200


def test_idempotency_key_replays_the_same_video(api):
    headers = {"HTTP_IDEMPOTENCY_KEY": "create-1"}
    first = api.post("/v1/videos", {"prompt": "p"}, format="json", **headers)
    second = api.post("/v1/videos", {"prompt": "p"}, format="json", **headers)
    assert second.json()["id"] == first.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert GenerationJob.objects.count() == 1
    conflict = api.post("/v1/videos", {"prompt": "other"}, format="json", **headers)
    assert conflict.status_code == 422
    assert GenerationJob.objects.count() == 1


def test_input_reference_as_a_data_url_object(api):
    import base64

    url = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    response = api.post(
        "/v1/videos", {"prompt": "a ball", "input_reference": {"image_url": url}}, format="json"
    )
    assert response.status_code == 200, response.content
    job = GenerationJob.objects.get()
    assert job.input_reference.name.startswith("references/")


@pytest.mark.parametrize(
    "reference",
    [
        {"image_url": "https://example.com/cat.png"},
        {"file_id": "file_123"},
        {"image_url": "data:image/png;base64,@@@"},
    ],
)
def test_input_reference_objects_that_cannot_be_used(api, reference):
    before = generation_state()
    response = api.post("/v1/videos", {"prompt": "x", "input_reference": reference}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input_reference"
    assert generation_state() == before
