"""The lease rules of generation.runner.claim, on real rows (no worker needed)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from generation.models import GenerationJob, JobAttempt, JobStage, JobStatus
from generation.runner import claim, worker_id
from tests.factories import UserFactory, clip_row_fields

pytestmark = pytest.mark.django_db


def _job(**fields) -> GenerationJob:
    defaults = dict(
        prompt="p",
        model="sora-2",
        engine="previs",
        seconds=2,
        size="512x512",
        seed=1,
        params={},
        params_hash="0" * 64,
    )
    return GenerationJob.objects.create(user=UserFactory(), **(defaults | fields))


def test_a_live_lease_held_by_another_worker_makes_a_duplicate_back_off():
    job = _job(
        stage=JobStage.RENDERING,
        status=JobStatus.IN_PROGRESS,
        lease_owner="elsewhere:1:42",
        lease_expires_at=timezone.now() + dt.timedelta(seconds=30),
    )
    result = claim(job.pk, stage=JobStage.RENDERING, worker=worker_id(), accept={JobStage.QUEUED})
    assert result.job is None and result.reason == "leased"
    assert 25 <= result.retry_in <= 30
    assert not JobAttempt.objects.exists()


def test_an_expired_lease_is_taken_over_and_the_old_attempt_marked_lost():
    job = _job(
        stage=JobStage.RENDERING,
        status=JobStatus.IN_PROGRESS,
        lease_owner="elsewhere:1:42",
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
    )
    old = JobAttempt.objects.create(job=job, stage=JobStage.RENDERING, worker="elsewhere:1:42")
    result = claim(job.pk, stage=JobStage.RENDERING, worker=worker_id(), accept={JobStage.QUEUED})
    assert result.job is not None and result.attempt.worker == worker_id()
    old.refresh_from_db()
    assert old.outcome == JobAttempt.Outcome.LOST


def test_a_job_that_keeps_killing_its_worker_fails_instead_of_looping(settings):
    settings.GENERATION_MAX_LOST_ATTEMPTS = 3
    job = _job(
        stage=JobStage.RENDERING,
        status=JobStatus.IN_PROGRESS,
        lease_owner="elsewhere:1:42",
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
    )
    for _ in range(2):
        JobAttempt.objects.create(
            job=job, stage=JobStage.RENDERING, worker="w", outcome=JobAttempt.Outcome.LOST
        )
    JobAttempt.objects.create(job=job, stage=JobStage.RENDERING, worker="elsewhere:1:42")
    result = claim(job.pk, stage=JobStage.RENDERING, worker=worker_id(), accept={JobStage.QUEUED})
    assert result.job is None and result.reason == "too many lost attempts"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.error_code == "worker_lost"
    assert job.counts_against_quota is False
    assert job.attempts.filter(outcome=JobAttempt.Outcome.RUNNING).count() == 0


def test_a_cancelled_job_whose_worker_died_is_finished_as_cancelled_not_rerun():
    job = _job(
        stage=JobStage.RENDERING,
        status=JobStatus.IN_PROGRESS,
        lease_owner="elsewhere:1:42",
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
        cancel_requested_at=timezone.now(),
    )
    result = claim(job.pk, stage=JobStage.RENDERING, worker=worker_id(), accept={JobStage.QUEUED})
    assert result.job is None and result.reason == "cancelled"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.stage == JobStage.DONE


def test_a_stopped_job_whose_worker_died_is_finished_as_blocked_with_its_reason():
    job = _job(
        stage=JobStage.RENDERING,
        status=JobStatus.IN_PROGRESS,
        lease_owner="elsewhere:1:42",
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
        cancel_requested_at=timezone.now(),
        annotations={"stop": {"code": "cameo_consent_withdrawn", "reason": "revoked"}},
    )
    result = claim(job.pk, stage=JobStage.RENDERING, worker=worker_id(), accept={JobStage.QUEUED})
    assert result.job is None
    job.refresh_from_db()
    assert job.status == JobStatus.BLOCKED and job.error_code == "cameo_consent_withdrawn"


def test_a_rendered_job_redelivered_to_the_render_queue_resends_post_processing(
    django_capture_on_commit_callbacks,
):
    job = _job(stage=JobStage.RENDERED, status=JobStatus.IN_PROGRESS, intermediate="x")
    with django_capture_on_commit_callbacks() as callbacks:
        result = claim(
            job.pk, stage=JobStage.RENDERING, worker=worker_id(), accept={JobStage.QUEUED}
        )
    assert result.job is None and "post-processing re-sent" in result.reason
    assert len(callbacks) == 1


def test_terminal_and_deleted_jobs_are_never_claimed():
    done = _job(stage=JobStage.DONE, status=JobStatus.COMPLETED)
    gone = _job(deleted_at=timezone.now())
    for job in (done, gone):
        result = claim(
            job.pk, stage=JobStage.RENDERING, worker=worker_id(), accept={JobStage.QUEUED}
        )
        assert result.job is None
    assert not JobAttempt.objects.exists()


def test_the_sweep_removes_files_only_finished_jobs_left_behind(settings, tmp_path):
    # A store of its own: other tests' leftovers must not count among the sweep's removals.
    settings.MEDIA_ROOT = tmp_path
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from generation.models import Clip
    from generation.runner import sweep_orphans

    done = _job(stage=JobStage.DONE, status=JobStatus.COMPLETED)
    live = _job(stage=JobStage.RENDERED, status=JobStatus.IN_PROGRESS)
    names = {
        "done_handoff": f"intermediate/{done.id.hex}/3/render.mzr",
        "done_lost_clip": f"clips/{done.id.hex}/4/video.mp4",
        "done_clip": f"clips/{done.id.hex}/5/video.mp4",
        "live_handoff": f"intermediate/{live.id.hex}/6/render.mzr",
    }
    for name in names.values():
        default_storage.save(name, ContentFile(b"x"))
    Clip.objects.create(
        **clip_row_fields(),
        job=done,
        user=done.user,
        video=names["done_clip"],
        thumbnail="t",
        spritesheet="s",
        metadata="m",
        duration_s=1,
        width=1,
        height=1,
        bytes=1,
        sha256="0" * 64,
    )
    assert sweep_orphans() == 2
    exists = {key: default_storage.exists(name) for key, name in names.items()}
    assert exists == {
        "done_handoff": False,
        "done_lost_clip": False,
        "done_clip": True,
        "live_handoff": True,
    }
