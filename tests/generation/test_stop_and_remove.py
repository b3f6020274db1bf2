"""generation.services.job_stop / clip_remove / clip_restore: the primitives the cameo, remix and
moderation apps use to stop jobs and take clips down."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from generation.models import Clip, GenerationJob, JobAttempt, JobStage, JobStatus
from generation.runner import finish_cancelled, worker_id
from generation.services import clip_remove, clip_restore, job_stop
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


def test_a_queued_job_is_blocked_at_once_with_the_reason(django_capture_on_commit_callbacks):
    job = _job()
    with django_capture_on_commit_callbacks(execute=True):
        stopped = job_stop(job=job, actor="system", code="cameo_revoked", reason="revoked")
    assert stopped.status == JobStatus.BLOCKED and stopped.stage == JobStage.DONE
    assert (stopped.error_code, stopped.error_message) == ("cameo_revoked", "revoked")
    assert stopped.events.filter(detail__action="stopped").exists()


def test_a_rendered_job_is_blocked_and_its_hand_off_deleted(django_capture_on_commit_callbacks):
    name = default_storage.save("intermediate/stop-test.mzr", ContentFile(b"frames"))
    job = _job(stage=JobStage.RENDERED, status=JobStatus.IN_PROGRESS, intermediate=name)
    with django_capture_on_commit_callbacks(execute=True):
        job_stop(job=job, actor="user:1", code="parent_removed", reason="gone")
    job.refresh_from_db()
    assert job.status == JobStatus.BLOCKED and job.intermediate == ""
    assert not default_storage.exists(name)


def test_a_running_job_is_told_to_stop_and_its_worker_ends_it_blocked_not_cancelled():
    worker = worker_id()
    job = _job(stage=JobStage.RENDERING, status=JobStatus.IN_PROGRESS, lease_owner=worker)
    job_stop(job=job, actor="system", code="cameo_revoked", reason="the owner revoked access")
    job.refresh_from_db()
    assert job.status == JobStatus.IN_PROGRESS and job.cancel_requested_at is not None
    attempt = JobAttempt.objects.create(job=job, stage=JobStage.RENDERING, worker=worker)
    finish_cancelled(job.pk, attempt, worker)
    job.refresh_from_db()
    assert job.status == JobStatus.BLOCKED and job.error_code == "cameo_revoked"


def test_stopping_a_finished_job_changes_nothing():
    job = _job(stage=JobStage.DONE, status=JobStatus.COMPLETED)
    assert job_stop(job=job, actor="system", code="x", reason="y").status == JobStatus.COMPLETED
    assert not job.events.exists()


def test_remove_and_restore_are_recorded_and_idempotent():
    job = _job(stage=JobStage.DONE, status=JobStatus.COMPLETED)
    clip = Clip.objects.create(
        **clip_row_fields(),
        job=job,
        user=job.user,
        duration_s=2,
        width=512,
        height=512,
        bytes=1,
        sha256="0" * 64,
    )
    assert clip_remove(clip=clip, actor="staff:7", reason="policy", code="policy_violation")
    assert not clip_remove(clip=clip, actor="staff:7", reason="again")
    clip.refresh_from_db()
    assert clip.removed_at is not None and clip.removal_reason.startswith("policy_violation")
    assert clip_restore(clip=clip, actor="staff:8", reason="appeal upheld")
    assert not clip_restore(clip=clip, actor="staff:8", reason="again")
    clip.refresh_from_db()
    assert clip.removed_at is None
    actions = list(job.events.order_by("id").values_list("detail__action", flat=True))
    assert actions == ["clip_removed", "clip_restored"]
