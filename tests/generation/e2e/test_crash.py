"""A job is never lost and never produces two clips: SIGKILL real worker processes at each
stage and check that the job completes exactly once, with one set of files and no orphans —
and, whatever point it died at (between watermarking and signing included), that the clip it
ends with is signed and watermarked."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import av
import numpy as np
import psutil
import pytest
from django.conf import settings

from generation.models import Clip, GenerationJob, JobAttempt, JobStatus
from generation.pipeline import signing_credentials
from generation.provenance.c2pa_sign import read_manifest
from generation.provenance.watermark import decode
from generation.tasks import reap
from tests.factories import UserFactory
from tests.fixtures import client_for, start_worker, wait_for
from tests.generation.e2e.helpers import job_of, wait_finished

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LEASE = "4"


def _job(api) -> GenerationJob:
    body = api.post(
        "/api/v1/generations",
        {
            "prompt": "a yellow ball falls onto a wooden crate in a studio",
            "seconds": 2,
            "size": "512x512",
            "seed": 7,
        },
        format="json",
    ).json()
    return job_of(body)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _assert_exactly_once(job: GenerationJob, *, lost_stage: str) -> None:
    assert job.status == JobStatus.COMPLETED, (job.error_code, job.error_message)
    assert Clip.objects.filter(job=job).count() == 1
    clip = Clip.objects.get(job=job)
    media = Path(settings.MEDIA_ROOT)
    stored = _files(media / "clips" / job.id.hex)
    # One attempt's directory, four files: video, thumbnail, spritesheet, metadata.
    attempts = {name.split("/")[0] for name in stored}
    assert len(attempts) == 1 and len(stored) == 4, stored
    assert clip.video.name.startswith(f"clips/{job.id.hex}/")
    assert _files(media / "intermediate" / job.id.hex) == []
    outcomes = list(job.attempts.filter(stage=lost_stage).values_list("outcome", flat=True))
    assert JobAttempt.Outcome.LOST in outcomes and outcomes[-1] == JobAttempt.Outcome.OK
    _assert_signed_and_marked(clip)


def _assert_signed_and_marked(clip: Clip) -> None:
    path = Path(clip.video.path)
    manifest = read_manifest(path, signing_credentials().trust_anchors_pem)
    assert manifest["state"] == "trusted", manifest["failures"]
    with av.open(str(path)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    key = settings.GENERATION_WATERMARK_KEY.encode()
    assert decode(frames, key).payload == bytes(clip.watermark)


@pytest.mark.parametrize(
    ("point", "stage"),
    [
        ("render", "rendering"),
        ("encode", "postprocessing"),
        ("sign", "postprocessing"),
        ("store", "postprocessing"),
    ],
)
def test_sigkill_of_the_pool_process_mid_stage_completes_once(tmp_path, point, stage):
    worker = start_worker(
        tmp_path,
        name=f"crash-{point}",
        extra_env={
            "MONTAGE_FAILPOINTS": point,
            "MONTAGE_FAILPOINT_DIR": str(tmp_path),
            "GENERATION_LEASE_SECONDS": LEASE,
        },
    )
    try:
        job = _job(client_for(UserFactory()))
        marker = tmp_path / point
        wait_for(marker.exists, 120, f"a worker to reach {point}", interval=0.1)
        time.sleep(0.05)
        victim = int(marker.read_text())
        os.kill(victim, signal.SIGKILL)
        job = wait_finished(job)
        _assert_exactly_once(job, lost_stage=stage)
    finally:
        worker.stop()


def test_sigkill_of_the_whole_worker_is_recovered_by_another(tmp_path):
    """The machine dies: parent and pool process gone, the message still unacknowledged at the
    broker. The reaper re-sends the job once its lease lapses; a new worker finishes it."""
    first = start_worker(
        tmp_path,
        name="doomed",
        extra_env={
            "MONTAGE_FAILPOINTS": "render",
            "MONTAGE_FAILPOINT_DIR": str(tmp_path),
            "GENERATION_LEASE_SECONDS": LEASE,
        },
    )
    job = _job(client_for(UserFactory()))
    wait_for((tmp_path / "render").exists, 120, "the render to start", interval=0.1)
    parent = psutil.Process(first.popen.pid)
    for proc in [*parent.children(recursive=True), parent]:
        proc.kill()
    first.popen.wait(timeout=10)
    first.stop()
    second = start_worker(tmp_path, name="rescuer", extra_env={"GENERATION_LEASE_SECONDS": LEASE})
    try:
        job.refresh_from_db()
        wait_for(lambda: reap() >= 1, 30, "the reaper to re-send the job", interval=0.5)
        job = wait_finished(job)
        _assert_exactly_once(job, lost_stage="rendering")
    finally:
        second.stop()
