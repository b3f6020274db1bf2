"""The native /api/v1/generations endpoints (variants, storyboard, seed, priority, cancel,
retry) without a worker; rendering has its own tests."""

from __future__ import annotations

import pytest

from generation.models import GenerationJob, JobStage, JobStatus
from generation.runner import cancel_requested
from tests.fixtures import client_for
from tests.generation.api.helpers import assert_error, generation_state

pytestmark = pytest.mark.django_db


def test_variants_make_one_job_each_with_consecutive_seeds(api):
    response = api.post(
        "/api/v1/generations",
        {
            "prompt": "a green cube rolls",
            "variants": 3,
            "seed": 41,
            "size": "512x512",
            "seconds": 2,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert [item["seed"] for item in data] == [41, 42, 43]
    assert [item["variant_index"] for item in data] == [0, 1, 2]
    assert len({item["variant_group"] for item in data}) == 1
    assert {item["status"] for item in data} == {"queued"}
    assert all(item["plan"] is None for item in data)
    jobs = GenerationJob.objects.order_by("variant_index")
    assert [job.seed for job in jobs] == [41, 42, 43]
    assert len({job.params_hash for job in jobs}) == 3


def test_storyboard_must_add_up_to_seconds(api):
    before = generation_state()
    response = api.post(
        "/api/v1/generations",
        {
            "prompt": "two shots",
            "seconds": 8,
            "storyboard": [
                {"prompt": "a ball drops", "seconds": 2},
                {"prompt": "it rolls", "seconds": 2},
            ],
        },
        format="json",
    )
    assert_error(response, 400, code="storyboard_mismatch", param="storyboard")
    assert generation_state() == before


def test_storyboard_sets_seconds_when_omitted(api):
    response = api.post(
        "/api/v1/generations",
        {
            "prompt": "two shots",
            "storyboard": [
                {"prompt": "a ball drops", "seconds": 2, "camera": "static"},
                {"prompt": "it rolls away", "seconds": 3, "camera": "pan"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201
    job = GenerationJob.objects.get()
    assert job.seconds == 5
    assert job.params["storyboard"][1] == {
        "prompt": "it rolls away",
        "seconds": 3.0,
        "camera": "pan",
    }


@pytest.mark.parametrize(
    ("payload", "code", "param"),
    [
        ({"prompt": "p", "variants": 5}, "max_value", "variants"),
        ({"prompt": "p", "priority": "urgent"}, "invalid_choice", "priority"),
        ({"prompt": "p", "size": "100x100"}, "invalid_choice", "size"),
        ({"prompt": "p", "seconds": 41}, "invalid_seconds", "seconds"),
        ({"prompt": "p", "seed": -1}, "min_value", "seed"),
        (
            {"prompt": "p", "storyboard": [{"prompt": "x", "seconds": 0}]},
            "min_value",
            "storyboard[0].seconds",
        ),
    ],
)
def test_native_bad_requests(api, payload, code, param):
    before = generation_state()
    assert_error(
        api.post("/api/v1/generations", payload, format="json"), 400, code=code, param=param
    )
    assert generation_state() == before


def test_native_sizes_are_accepted_natively_but_not_on_the_openai_api(api):
    assert (
        api.post(
            "/api/v1/generations", {"prompt": "p", "size": "512x512"}, format="json"
        ).status_code
        == 201
    )
    response = api.post("/v1/videos", {"prompt": "p", "size": "512x512"}, format="json")
    assert_error(response, 400, code="invalid_size", param="size")


def test_cancel_of_a_queued_job_is_immediate_and_final(api):
    job_id = api.post("/api/v1/generations", {"prompt": "p"}, format="json").json()["data"][0]["id"]
    response = api.post(f"/api/v1/generations/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    job = GenerationJob.objects.get()
    assert job.status == JobStatus.CANCELLED and job.stage == JobStage.DONE
    assert job.counts_against_quota is False
    assert cancel_requested(job.pk)
    again = api.post(f"/api/v1/generations/{job_id}/cancel")
    assert_error(again, 409, code="job_not_cancellable")
    # A cancelled job shows as failed with a reason in the OpenAI shape.
    video = api.get(f"/v1/videos/{job_id}").json()
    assert video["status"] == "failed" and video["error"]["code"] == "cancelled"


def test_only_failed_jobs_can_be_retried(api):
    job_id = api.post("/api/v1/generations", {"prompt": "p"}, format="json").json()["data"][0]["id"]
    assert_error(api.post(f"/api/v1/generations/{job_id}/retry"), 409, code="job_not_retryable")
    GenerationJob.objects.update(
        status=JobStatus.FAILED,
        stage=JobStage.DONE,
        error_code="generation_failed",
        error_message="boom",
        counts_against_quota=False,
    )
    response = api.post(f"/api/v1/generations/{job_id}/retry")
    assert response.status_code == 200
    assert response.json()["status"] == "queued" and response.json()["error"] is None
    job = GenerationJob.objects.get()
    assert job.counts_against_quota is True
    assert [e["action"] for e in job.events.order_by("id").values_list("detail", flat=True)] == [
        "created",
        "retried",
    ]


def test_list_and_detail_are_owner_only(api, other_user):
    mine = api.post("/api/v1/generations", {"prompt": "mine"}, format="json").json()["data"][0]
    other = client_for(other_user)
    assert other.get("/api/v1/generations").json()["data"] == []
    assert_error(
        other.get(f"/api/v1/generations/{mine['id']}"),
        404,
        code="video_not_found",
        param="video_id",
    )
    assert_error(
        other.post(f"/api/v1/generations/{mine['id']}/cancel"),
        404,
        code="video_not_found",
        param="video_id",
    )
    detail = api.get(f"/api/v1/generations/{mine['id']}").json()
    assert detail["id"] == mine["id"] and detail["urls"] is None


def test_signed_media_links_reject_forgeries(anon_client):
    assert_error(anon_client.get("/api/v1/media/not-a-token"), 404, code="media_not_found")


def test_the_list_costs_the_same_queries_for_any_page_size(api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def page_queries(count: int) -> int:
        while GenerationJob.objects.count() < count:
            api.post("/api/v1/generations", {"prompt": "p"}, format="json")
        with CaptureQueriesContext(connection) as captured:
            response = api.get("/api/v1/generations", {"limit": count})
        assert len(response.json()["data"]) == count
        return len(captured)

    assert page_queries(2) == page_queries(4)
