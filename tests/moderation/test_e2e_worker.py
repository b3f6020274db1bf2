"""End to end with a real Celery worker and the real engine: a clean prompt is rendered,
screened at completion (frames through NudeNet, transcript, hash banks) and completes; once its
frames are banked, the same render is blocked before a clip exists."""

from __future__ import annotations

import pytest

from generation.models import Clip, GenerationJob, JobStatus
from moderation.models import BankedHash, HashBank, ScreeningDecision
from tests.factories import UserFactory
from tests.fixtures import client_for, start_worker, wait_for

pytestmark = pytest.mark.slow

REQUEST = {
    "prompt": 'a red ball bouncing on a beach, someone says "what a lovely day"',
    "seconds": 1,
    "size": "512x512",
    "seed": 1234,
}


@pytest.fixture
def worker(transactional_db, tmp_path):
    proc = start_worker(tmp_path, name="mod")
    yield proc
    proc.stop()


def _render(api) -> GenerationJob:
    response = api.post("/api/v1/generations", REQUEST, format="json")
    assert response.status_code == 201, response.content
    job = GenerationJob.objects.get(pk=response.json()["data"][0]["id"].removeprefix("video_"))

    def finished():
        job.refresh_from_db()
        return job.is_terminal

    wait_for(finished, 280, f"job {job.public_id} to finish", interval=0.3)
    return job


@pytest.mark.timeout(600)
def test_a_banked_clip_is_blocked_when_rendered_again(worker):
    api = client_for(UserFactory())
    first = _render(api)
    assert first.status == JobStatus.COMPLETED, (first.error_code, first.error_message)
    decision = ScreeningDecision.objects.get(subject_id=first.public_id, phase="complete")
    assert decision.verdict == "allow" and decision.context["frames_scored"] >= 1
    assert decision.context["nudity_max"] < 0.45
    clip = Clip.objects.get(job=first)
    assert clip.held_at is None

    bank = HashBank.objects.create(name="e2e-bank")
    BankedHash.objects.bulk_create(
        BankedHash(bank=bank, hash=bytes(fp.hash), added_by="staff:test")
        for fp in clip.fingerprints.all()
    )
    second = _render(api)
    assert second.status == JobStatus.BLOCKED
    assert second.error_code == "content_policy_hash_match"
    assert not Clip.objects.filter(job=second).exists()
    blocked = ScreeningDecision.objects.get(subject_id=second.public_id, phase="complete")
    assert blocked.reasons[0]["matched"] == "e2e-bank"
