"""What the workers do with a job: claim a stage under a lease, work, hand off, finish once.

Exactly-once comes from three things together:
- a **lease** on the job row (owner + expiry, renewed by a heartbeat while working): a
  redelivered task for a job another live worker owns backs off; one whose owner died takes over;
- **deterministic output names** (``clips/<job>/...``): a retried stage overwrites what a dead
  attempt half-wrote instead of leaving a second set of files;
- the **unique Clip.job** key, written in the same transaction that marks the job completed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import socket
import struct
import threading
import time
from dataclasses import dataclass

import numpy as np
import zstandard
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from core import metrics
from core.logging import job_id_var
from generation.engines.base import Cancelled, RenderResult
from generation.models import GenerationJob, JobAttempt, JobStage, JobStatus
from generation.services import job_event_record, job_publish

logger = logging.getLogger("montage.generation")

# Progress spans: rendering is 0-80 %, post-processing 80-100 %.
RENDER_SPAN = (0, 80)
POST_SPAN = (80, 100)


def _pid_namespace() -> str:
    # Containers may share a host name; their PID namespaces differ, and a pid means
    # something only inside its own namespace.
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def worker_id() -> str:
    return f"{socket.gethostname()}:{_pid_namespace()}:{os.getpid()}"


def _owner_is_dead(owner: str) -> bool:
    """True when the owner ran in this host's PID namespace and its process is gone (no need
    to wait for the lease to expire: a SIGKILLed pool process is replaced at once)."""
    host, _, pid = owner.rpartition(":")
    if host != f"{socket.gethostname()}:{_pid_namespace()}" or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Claim:
    job: GenerationJob | None
    attempt: JobAttempt | None = None
    retry_in: float | None = None  # another live worker holds the lease: try again later
    reason: str = ""


def claim(job_id, *, stage: str, worker: str, accept: set[str]) -> Claim:
    """Takes the lease for ``stage`` if the job is in one of the ``accept`` stages (or in
    ``stage`` itself under a dead owner)."""
    lease = dt_seconds(settings.GENERATION_LEASE_SECONDS)
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.deleted_at is not None:
            return Claim(None, reason="gone")
        if job.is_terminal:
            return Claim(None, reason=f"already {job.status}")
        now = timezone.now()
        if job.cancel_requested_at is not None:
            # A cancelled job whose worker died: finish the cancellation instead of running it.
            _finish_stopped(job, worker)
            return Claim(None, reason="cancelled")
        if job.stage == JobStage.RENDERED and stage == JobStage.RENDERING:
            # The render committed but its hand-off may never have reached the broker.
            from generation.tasks import enqueue_postprocess

            enqueue_postprocess(job)
            return Claim(None, reason="already rendered; post-processing re-sent")
        if job.stage == stage:
            live = job.lease_expires_at is not None and job.lease_expires_at > now
            if live and job.lease_owner != worker and not _owner_is_dead(job.lease_owner):
                remaining = (job.lease_expires_at - now).total_seconds()
                return Claim(None, retry_in=max(1.0, remaining), reason="leased")
            lost = list(
                JobAttempt.objects.filter(
                    job=job, stage=stage, outcome=JobAttempt.Outcome.RUNNING
                ).values_list("pk", flat=True)
            )
            JobAttempt.objects.filter(pk__in=lost).update(
                outcome=JobAttempt.Outcome.LOST, ended_at=now
            )
            lost_so_far = JobAttempt.objects.filter(
                job=job, stage=stage, outcome=JobAttempt.Outcome.LOST
            ).count()
            if lost_so_far >= settings.GENERATION_MAX_LOST_ATTEMPTS:
                # A job that kills its worker every time (OOM, a crash in native code) must
                # not hold a GPU and the user's quota forever.
                job_finish(
                    job,
                    worker,
                    status=JobStatus.FAILED,
                    action="failed",
                    code="worker_lost",
                    message=f"The worker running this job died {lost_so_far} times.",
                    system_fault=True,
                )
                for attempt_pk in lost:
                    transaction.on_commit(
                        lambda pk=attempt_pk: delete_attempt_files(job.id.hex, pk)
                    )
                return Claim(None, reason="too many lost attempts")
            # A dead attempt's half-written files go, so a job never leaves orphans behind.
            for attempt_pk in lost:
                transaction.on_commit(lambda pk=attempt_pk: delete_attempt_files(job.id.hex, pk))
        elif job.stage not in accept:
            return Claim(None, reason=f"stage is {job.stage}")
        job.stage = stage
        job.status = JobStatus.IN_PROGRESS
        job.lease_owner = worker
        job.lease_expires_at = now + lease
        job.started_at = job.started_at or now
        job.save(update_fields=["stage", "status", "lease_owner", "lease_expires_at", "started_at"])
        attempt = JobAttempt.objects.create(job=job, stage=stage, worker=worker)
        job_event_record(job, f"worker:{worker}", action="claimed", attempt=attempt.pk)
        job_publish(job, "job.updated")
    return Claim(job, attempt)


def dt_seconds(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


class LeaseLost(Exception):
    """Another worker took the job over (this one was presumed dead): stop, write nothing."""


class Heartbeat:
    """Renews the lease while a stage runs, and watches for cancellation."""

    def __init__(self, job_id, worker: str):
        self.job_id = job_id
        self.worker = worker
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)
        self._last_cancel_check = 0.0
        self._cancelled = False

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self):
        lease = settings.GENERATION_LEASE_SECONDS
        interval = max(0.5, lease / 4)
        last_renewed = time.monotonic()
        try:
            while not self._stop.wait(interval):
                try:
                    updated = GenerationJob.objects.filter(
                        pk=self.job_id, lease_owner=self.worker
                    ).update(lease_expires_at=timezone.now() + dt_seconds(lease))
                    cancelled = GenerationJob.objects.filter(
                        pk=self.job_id, cancel_requested_at__isnull=False
                    ).exists()
                except DatabaseError:
                    # Keep trying while the lease may still be ours; once it has surely lapsed,
                    # another worker may have taken over, so this one must stop.
                    logger.warning("lease renewal failed for job %s", self.job_id, exc_info=True)
                    connection.close()
                    if time.monotonic() - last_renewed > lease - interval:
                        self.lost.set()
                        return
                    continue
                if not updated:
                    self.lost.set()
                    return
                last_renewed = time.monotonic()
                if cancelled:
                    self._cancelled = True
        finally:
            connection.close()

    def should_stop(self) -> bool:
        """Checked by the engine about every frame: cancelled by the user, or lease lost."""
        if self.lost.is_set():
            return True
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= 0.2:
            self._last_cancel_check = now
            # The cache answers within the second a user expects; the heartbeat also reads
            # the row, so a cancel survives a cache outage or eviction.
            self._cancelled = cancel_requested(self.job_id)
        return self._cancelled


def _cancel_key(job_id) -> str:
    return f"job-cancel:{job_id}"


def signal_cancel(job_id) -> None:
    try:
        cache.set(_cancel_key(job_id), "1", timeout=24 * 3600)
    except RedisError:
        # Sent after the cancellation committed: a Redis outage must not turn it into an error.
        # The heartbeat reads the row, so the worker still stops, a little later.
        logger.warning("cancel flag not set for job %s: Redis unavailable", job_id, exc_info=True)


def cancel_requested(job_id) -> bool:
    try:
        return cache.get(_cancel_key(job_id)) is not None
    except Exception:  # a cache outage must not fail the render; the heartbeat reads the row
        logger.warning("cancel flag unreadable for job %s", job_id, exc_info=True)
        return False


class ProgressReporter:
    """Maps an engine's 0..1 into the job's percent span; writes and pushes only real steps."""

    def __init__(self, job: GenerationJob, span: tuple[int, int]):
        self.job = job
        self.span = span
        self.last = job.progress

    def __call__(self, fraction: float) -> None:
        low, high = self.span
        percent = int(low + (high - low) * min(max(fraction, 0.0), 1.0))
        if percent - self.last < 2 and percent < high:
            return
        self.last = percent
        GenerationJob.objects.filter(pk=self.job.pk, progress__lt=percent).update(progress=percent)
        self.job.progress = percent
        from core.realtime import publish_to_user
        from generation.services import job_payload

        publish_to_user(self.job.user_id, "job.progress", job_payload(self.job))


# --- Intermediate render storage -----------------------------------------------------------


def attempt_prefix(attempt: JobAttempt, root: str) -> str:
    """Each attempt writes under its own names, so a worker wrongly presumed dead can never
    overwrite what the attempt that replaced it wrote."""
    return f"{root}/{attempt.job_id.hex}/{attempt.pk}"


# The render hand-off: a JSON header (array shapes, metadata, compressed sizes), then the
# frames and the audio, each zstd-compressed straight from the arrays' memory. Compressing the
# raw buffers (rather than an .npz of them) skips two full copies of ~265 MB per 4 s of 720p.
_HEADER = struct.Struct("<Q")


def save_intermediate(attempt: JobAttempt, result: RenderResult) -> str:
    compressor = zstandard.ZstdCompressor(level=1, threads=-1)
    frames = np.ascontiguousarray(result.frames, dtype=np.uint8)
    audio = np.ascontiguousarray(result.audio, dtype=np.float32)
    blobs = [compressor.compress(memoryview(a).cast("B")) for a in (frames, audio)]
    header = json.dumps(
        {
            "frames": list(frames.shape),
            "audio": list(audio.shape),
            "sizes": [len(b) for b in blobs],
            "fps": result.fps,
            "sample_rate": result.sample_rate,
            "camera": result.camera,
            "events": result.events,
        }
    ).encode()
    name = f"{attempt_prefix(attempt, 'intermediate')}/render.mzr"
    if default_storage.exists(name):
        default_storage.delete(name)
    payload = b"".join([_HEADER.pack(len(header)), header, *blobs])
    return default_storage.save(name, ContentFile(payload))


def load_intermediate(name: str) -> RenderResult:
    with default_storage.open(name, "rb") as handle:
        raw = handle.read()
    (length,) = _HEADER.unpack_from(raw, 0)
    offset = _HEADER.size + length
    meta = json.loads(raw[_HEADER.size : offset])
    decompressor = zstandard.ZstdDecompressor()
    arrays = []
    for key, dtype, size in zip(
        ("frames", "audio"), (np.uint8, np.float32), meta["sizes"], strict=True
    ):
        # Decompressed straight into a writable array: the watermark is drawn in place.
        array = np.empty(meta[key], dtype=dtype)
        target = memoryview(array).cast("B")
        with decompressor.stream_reader(memoryview(raw)[offset : offset + size]) as reader:
            filled = 0
            while filled < len(target):
                count = reader.readinto(target[filled:])
                if not count:
                    raise ValueError(f"render hand-off {name} is truncated")
                filled += count
        arrays.append(array)
        offset += size
    return RenderResult(
        frames=arrays[0],
        audio=arrays[1],
        sample_rate=meta["sample_rate"],
        fps=meta["fps"],
        camera=meta["camera"],
        events=meta["events"],
    )


def _delete_tree(storage, path: str) -> None:
    try:
        directories, files = storage.listdir(path)
    except FileNotFoundError:
        return
    for name in files:
        storage.delete(f"{path}/{name}")
    for directory in directories:
        _delete_tree(storage, f"{path}/{directory}")


def delete_attempt_files(job_hex: str, attempt_pk: int) -> None:
    from generation.pipeline import scratch_dir

    for root in ("intermediate", "clips"):
        _delete_tree(default_storage, f"{root}/{job_hex}/{attempt_pk}")
    # Local scratch space exists only on the host that ran the attempt; elsewhere a no-op.
    shutil.rmtree(scratch_dir(job_hex, attempt_pk), ignore_errors=True)


def sweep_orphans() -> int:
    """Deletes files no job can still need: hand-offs of finished or deleted jobs, and attempt
    directories beside a finished job's clip. (A crash between a job's final commit and the
    deletion that follows it leaves such files; so does a worker lost mid-write whose job was
    then finished elsewhere.) Returns how many directories went.

    Only ``intermediate/`` is listed (it holds in-flight renders alone); clip directories are
    looked at only for jobs with a lost or failed attempt in the last day, so the sweep never
    walks the whole clip store.
    """
    from generation.models import Clip

    try:
        handoff_dirs, _ = default_storage.listdir("intermediate")
    except FileNotFoundError:
        handoff_dirs = []
    since = timezone.now() - dt.timedelta(days=1)
    troubled = JobAttempt.objects.filter(
        outcome__in=[JobAttempt.Outcome.LOST, JobAttempt.Outcome.ERROR], ended_at__gte=since
    ).values_list("job_id", flat=True)
    hexes = {d for d in handoff_dirs if len(d) == 32}
    jobs = {
        job.id.hex: job
        for job in GenerationJob.objects.filter(Q(pk__in=list(hexes)) | Q(pk__in=troubled)).only(
            "id", "status", "deleted_at"
        )
    }
    clip_dirs = {
        job_id.hex: video.split("/")[2]
        for job_id, video in Clip.objects.filter(
            job_id__in=[j.id for j in jobs.values()]
        ).values_list("job_id", "video")
    }
    removed = 0
    targets = [("intermediate", h) for h in hexes] + [
        ("clips", h) for h, job in jobs.items() if job.is_terminal
    ]
    for root, job_hex in targets:
        job = jobs.get(job_hex)
        if job is not None and not job.is_terminal and job.deleted_at is None:
            continue  # a live job's attempts clean up after themselves (claim, finish)
        keep = clip_dirs.get(job_hex) if root == "clips" and job and not job.deleted_at else None
        try:
            attempt_dirs, _ = default_storage.listdir(f"{root}/{job_hex}")
        except FileNotFoundError:
            continue
        for attempt_dir in attempt_dirs:
            if attempt_dir != keep:
                _delete_tree(default_storage, f"{root}/{job_hex}/{attempt_dir}")
                removed += 1
    return removed


# --- Stage endings -------------------------------------------------------------------------


def _end_attempt(attempt: JobAttempt, outcome: str, error: str = "") -> None:
    JobAttempt.objects.filter(pk=attempt.pk).update(
        outcome=outcome, ended_at=timezone.now(), error=error[:5000]
    )


def job_finish(
    job: GenerationJob,
    worker: str,
    *,
    status: str,
    action: str,
    code: str = "",
    message: str = "",
    system_fault: bool = False,
) -> None:
    """Ends a locked job without a clip (cancelled, failed, blocked) and drops its render."""
    job.status = status
    job.stage = JobStage.DONE
    job.error_code = code
    job.error_message = message[:2000]
    if system_fault:
        job.counts_against_quota = False
    job.completed_at = timezone.now()
    job.lease_owner = ""
    job.lease_expires_at = None
    intermediate, job.intermediate = job.intermediate, ""
    job.save()
    metrics.job_finished(job)
    job_event_record(job, f"worker:{worker}", action=action, **({"code": code} if code else {}))
    job_publish(job, "job.updated" if status == JobStatus.CANCELLED else "job.failed")
    if intermediate:
        transaction.on_commit(lambda: default_storage.delete(intermediate))


def finish_cancelled(job_id, attempt: JobAttempt, worker: str) -> None:
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job_id)
        _end_attempt(attempt, JobAttempt.Outcome.CANCELLED)
        transaction.on_commit(lambda: delete_attempt_files(job.id.hex, attempt.pk))
        if not job.is_terminal:
            _finish_stopped(job, worker)


def _finish_stopped(job: GenerationJob, worker: str) -> None:
    """Ends a job that was told to stop: ``blocked`` when it was stopped for a safety reason
    (generation.services.job_stop), ``cancelled`` when its owner cancelled it."""
    stop = job.annotations.get("stop")
    if stop:
        job_finish(
            job,
            worker,
            status=JobStatus.BLOCKED,
            action="blocked",
            code=stop["code"],
            message=stop["reason"],
        )
    else:
        job_finish(job, worker, status=JobStatus.CANCELLED, action="cancelled")


def finish_failed(
    job_id, attempt: JobAttempt, worker: str, *, code: str, message: str, system_fault: bool
) -> None:
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job_id)
        _end_attempt(attempt, JobAttempt.Outcome.ERROR, message)
        transaction.on_commit(lambda: delete_attempt_files(job.id.hex, attempt.pk))
        if job.is_terminal or job.lease_owner != worker:
            return
        job_finish(
            job,
            worker,
            status=JobStatus.FAILED,
            action="failed",
            code=code,
            message=message,
            system_fault=system_fault,
        )


def run_stage(job_id, *, stage: str, accept: set[str], work) -> Claim:
    """Claims ``stage``, runs ``work(job, heartbeat, attempt)`` under a heartbeat and maps its
    ending to the job's state. ``work`` commits its own success."""
    close_old_connections()
    worker = worker_id()
    result = claim(job_id, stage=stage, worker=worker, accept=accept)
    if result.job is None:
        logger.info("job %s: %s not claimed (%s)", job_id, stage, result.reason)
        return result
    token = job_id_var.set(str(job_id))
    try:
        with (
            Heartbeat(job_id, worker) as heartbeat,
            metrics.job_stage_timer(engine=result.job.engine, stage=stage),
        ):
            try:
                work(result.job, heartbeat, result.attempt)
            except Cancelled:
                if heartbeat.lost.is_set():
                    _end_attempt(result.attempt, JobAttempt.Outcome.LOST)
                else:
                    finish_cancelled(job_id, result.attempt, worker)
            except LeaseLost:
                _end_attempt(result.attempt, JobAttempt.Outcome.LOST)
            except Exception as exc:
                logger.exception("job %s: %s failed", job_id, stage)
                finish_failed(
                    job_id,
                    result.attempt,
                    worker,
                    code="generation_failed"
                    if stage == JobStage.RENDERING
                    else "processing_failed",
                    message=f"{type(exc).__name__}: {exc}",
                    system_fault=True,
                )
    finally:
        job_id_var.reset(token)
    return result
