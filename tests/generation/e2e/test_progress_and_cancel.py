"""Progress and completion reach the owner's WebSocket as they happen; cancelling a running
job stops it within about a second and frees the worker."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from generation.models import Clip, GenerationJob, JobAttempt, JobStatus
from tests.factories import UserFactory
from tests.fixtures import client_for, wait_for
from tests.generation.e2e.helpers import job_of, wait_finished

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


async def _collect(url: str, token: str, until: str, timeout: float) -> list[dict]:
    events = []
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ready["event"] == "ready"
        events.append(ready)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            events.append(message)
            if message["event"] == until:
                break
    return events


def test_progress_and_completion_are_pushed_to_the_owner(montage_server, generation_worker):
    user = UserFactory()
    api = client_for(user)
    ws_url = montage_server.replace("http://", "ws://") + "/ws/"

    async def scenario():
        listener = asyncio.create_task(_collect(ws_url, api.api_key, "job.completed", 180))
        await asyncio.sleep(0.5)  # the socket has joined its group before the job starts
        await asyncio.to_thread(
            api.post,
            "/api/v1/generations",
            {"prompt": "a red ball bounces in a studio", "seconds": 2, "size": "512x512"},
            format="json",
        )
        return await listener

    events = asyncio.run(scenario())
    job = GenerationJob.objects.get()
    progress = [e["data"]["progress"] for e in events if e["event"] == "job.progress"]
    assert progress == sorted(progress) and len(progress) >= 3
    assert events[-1]["event"] == "job.completed"
    assert events[-1]["data"] == {
        "id": job.public_id,
        "status": "completed",
        "stage": "done",
        "progress": 100,
        "error": None,
    }


def test_cancel_stops_a_running_render_within_a_second(generation_worker):
    api = client_for(UserFactory())
    long_job = api.post(
        "/api/v1/generations",
        {
            "prompt": "three balls orbit a crate on a street at night",
            "seconds": 12,
            "size": "720x1280",
        },
        format="json",
    ).json()["data"][0]
    job = job_of({"data": [long_job]})

    def rendering():
        job.refresh_from_db()
        return job.status == JobStatus.IN_PROGRESS and job.progress >= 5

    wait_for(rendering, 120, "the render to be under way", interval=0.1)
    asked = time.monotonic()
    assert api.post(f"/api/v1/generations/{long_job['id']}/cancel").status_code == 200

    def cancelled():
        job.refresh_from_db()
        return job.status == JobStatus.CANCELLED

    wait_for(cancelled, 10, "the job to be cancelled", interval=0.05)
    stopped_after = time.monotonic() - asked
    assert stopped_after < 2.0, stopped_after
    assert job.attempts.get().outcome == JobAttempt.Outcome.CANCELLED
    assert not Clip.objects.filter(job=job).exists()

    # The worker is free: a new job starts right away and completes.
    quick = api.post(
        "/api/v1/generations",
        {"prompt": "a cube slides", "seconds": 1, "size": "512x512"},
        format="json",
    ).json()["data"][0]
    follow = wait_finished(job_of({"data": [quick]}), 120)
    assert follow.status == JobStatus.COMPLETED
