"""A job that failed for the system's fault is retried to completion without costing quota.

Its own module: no other worker may be consuming the queues while the faulty one runs."""

from __future__ import annotations

import pytest

from generation.models import JobStatus
from tests.factories import UserFactory
from tests.fixtures import client_for, start_worker
from tests.generation.e2e.helpers import job_of, wait_finished

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_failed_job_is_retried_to_completion(tmp_path):
    worker = start_worker(
        tmp_path,
        name="flaky",
        extra_env={"MONTAGE_FAILPOINTS": "render=fail", "MONTAGE_FAILPOINT_DIR": str(tmp_path)},
    )
    try:
        api = client_for(UserFactory())
        body = api.post(
            "/api/v1/generations",
            {"prompt": "a cube slides", "seconds": 1, "size": "512x512"},
            format="json",
        ).json()
        job = wait_finished(job_of(body), 120)
        assert job.status == JobStatus.FAILED and job.error_code == "generation_failed"
        assert job.counts_against_quota is False
        assert "InjectedFault" in job.attempts.get().error
        retried = api.post(f"/api/v1/generations/{job.public_id}/retry")
        assert retried.status_code == 200 and retried.json()["status"] == "queued"
        job = wait_finished(job, 120)
        assert job.status == JobStatus.COMPLETED and job.counts_against_quota is True
        assert [a.outcome for a in job.attempts.filter(stage="rendering").order_by("id")] == [
            "error",
            "ok",
        ]
    finally:
        worker.stop()
