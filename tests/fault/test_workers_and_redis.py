"""The generation pipeline under faults, with the real REST server, workers and beat around a
Redis the test owns.

Workers: a job is never lost and never produces two clips when a whole worker dies. SIGKILL
to the process group of a real CPU worker at the signing step, or of a real GPU worker
mid-render, then a new worker: every job accepted over HTTP completes exactly once, with one
clip, one set of stored files and no intermediates left behind.

Redis (broker, cache and channel layer at once) first stops answering for a moment (SIGSTOP:
connections accepted, nothing answered), then dies in the middle of a burst of submissions
and comes back empty: its queued messages and cached keys are gone. What the API guarantees:
a submission is answered 201 once its job row has committed, with or without a broker: the
row is the durable record, and the reaper re-sends the task of a job that waited too long
without a worker (its message never published, or lost with Redis). So every 201 completes
exactly once. A submission the API refuses is answered 503 in the error shape with
Retry-After and leaves no job. Requests that need Redis itself (readiness, a teen's For You
feed, whose daily limit lives there) answer 503 in the error shape while it is down, fast
rather than hanging (a silent Redis costs a request its socket timeouts, not minutes), and
everything recovers without restarting a process.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from generation.models import TERMINAL, Clip, GenerationJob, JobAttempt, JobStage, JobStatus
from generation.pipeline import scratch_dir
from tests.factories import TeenFactory, UserFactory
from tests.fault.checks import assert_error_shape, exactly_once, job_id_of, report, submit
from tests.fault.procs import Group, elapsed
from tests.fixtures import wait_for

pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

JOBS = 2
FINISH_WITHIN = 150

BEFORE, WHILE_FROZEN, WHILE_DOWN, AFTER = 2, 1, 3, 1
# Down at least this long: every worker and beat loses its connection and starts backing off.
DOWN_FOR = 3.0
# A request while Redis is down must be answered, one way or the other, within this; while it
# accepts connections and never answers, within this (each Redis call then waits out its
# socket timeout: the throttles' 2 s each, the publish's 3 s per try).
DOWN_LATENCY_LIMIT = 5.0
FROZEN_LATENCY_LIMIT = 20.0


def _pid_of(attempt: JobAttempt) -> int:
    return int(attempt.worker.rsplit(":", 1)[1])


def _in_group(pid: int, group: Group) -> bool:
    try:
        return os.getpgid(pid) == group.pgid
    except ProcessLookupError:
        return False


def _submit_jobs(stack, marker: str, seconds: int = 1) -> list[uuid.UUID]:
    with stack.client(UserFactory()) as client:
        responses = [
            submit(client, marker=f"{marker}-{index}", seconds=seconds) for index in range(JOBS)
        ]
    assert [r.status_code for r in responses] == [201] * JOBS, [r.text for r in responses]
    return [uuid.UUID(job_id_of(r)) for r in responses]


def _wait_terminal(job_ids, timeout: float) -> None:
    def finished() -> bool:
        statuses = GenerationJob.objects.filter(pk__in=job_ids).values_list("status", flat=True)
        return len(statuses) == len(job_ids) and all(s in TERMINAL for s in statuses)

    # A job still unfinished at the deadline is counted as lost, and reported, before anything
    # is asserted.
    with contextlib.suppress(TimeoutError):
        wait_for(finished, timeout, "every job to finish", interval=0.2)


def _wait_completed(job_id, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        wait_for(
            lambda: GenerationJob.objects.get(pk=job_id).status in TERMINAL,
            timeout,
            "the killed job to finish",
            interval=0.1,
        )


def _lost_then_ok(job_id, stage: str) -> list[str]:
    return list(
        JobAttempt.objects.filter(job_id=job_id, stage=stage)
        .order_by("pk")
        .values_list("outcome", flat=True)
    )


def test_cpu_worker_killed_mid_sign_every_job_completes_once(stack, tmp_path):
    # The first CPU pool process to reach the signing step stops there (generation.faults),
    # after the C2PA manifest is written and before it is verified and stored.
    _, cpu = stack.workers(
        cpu_env={"MONTAGE_FAILPOINTS": "sign", "MONTAGE_FAILPOINT_DIR": str(tmp_path)}
    )
    job_ids = _submit_jobs(stack, "cpu-kill")
    marker = tmp_path / "sign"
    pid = wait_for(
        lambda: marker.exists() and marker.read_text().strip(), 120, "a worker at signing"
    )
    pid = int(pid)
    assert _in_group(pid, cpu)

    def signing() -> JobAttempt | None:
        return (
            JobAttempt.objects.filter(
                job_id__in=job_ids,
                stage=JobStage.POSTPROCESSING,
                outcome=JobAttempt.Outcome.RUNNING,
                worker__endswith=f":{pid}",
            )
            .select_related("job")
            .first()
        )

    attempt = wait_for(signing, 10, "the signing attempt's row", interval=0.02)
    scratch = scratch_dir(attempt.job_id.hex, attempt.pk)
    # Encoded (92 %: encode done) and signed into scratch space, not yet verified or stored.
    assert attempt.job.progress == 92, attempt.job.progress
    assert (scratch / "signed.mp4").exists()
    cpu.kill()
    killed_at = time.monotonic()
    victim = GenerationJob.objects.get(pk=attempt.job_id)
    assert victim.stage == JobStage.POSTPROCESSING and victim.progress < 98

    stack.cpu = None
    stack.workers()
    _wait_completed(victim.pk, FINISH_WITHIN)
    recover_s = elapsed(killed_at)
    _wait_terminal(job_ids, max(1.0, FINISH_WITHIN - recover_s))
    outcome = exactly_once(job_ids)
    attempts = _lost_then_ok(victim.pk, JobStage.POSTPROCESSING)
    report(
        {
            "fault": "SIGKILL cpu worker group mid-sign",
            "accepted": outcome.accepted,
            "completed": outcome.completed,
            "duplicates": outcome.duplicates,
            "lost": outcome.lost,
            "unavailable_while_down": 0,
            "recover_s": recover_s,
            "killed_job_postprocess_attempts": attempts,
        }
    )
    assert outcome.problems == [], outcome.problems
    assert outcome.completed == JOBS
    assert attempts[0] == JobAttempt.Outcome.LOST and attempts[-1] == JobAttempt.Outcome.OK
    # The dead attempt's scratch files went with it.
    assert not scratch.exists()


def test_gpu_worker_killed_mid_render_every_job_completes_once(stack):
    gpu, _ = stack.workers()
    # Two seconds of frames: a render long enough to be caught in the act.
    job_ids = _submit_jobs(stack, "gpu-kill", seconds=2)

    def rendering() -> JobAttempt | None:
        # Frames being drawn (progress past the plan, short of the hand-off) by a pool process
        # of this worker, observed in the rows the worker writes.
        attempts = JobAttempt.objects.filter(
            job_id__in=job_ids, stage=JobStage.RENDERING, outcome=JobAttempt.Outcome.RUNNING
        ).select_related("job")
        for attempt in attempts:
            job = attempt.job
            drawing = job.stage == JobStage.RENDERING and 0 < job.progress < 60
            if drawing and _in_group(_pid_of(attempt), gpu):
                return attempt
        return None

    attempt = wait_for(rendering, 120, "a job to be rendering", interval=0.02)
    gpu.kill()
    killed_at = time.monotonic()
    victim = GenerationJob.objects.get(pk=attempt.job_id)
    # Nothing but the dead worker could have moved the job on: it died mid-render.
    assert victim.stage == JobStage.RENDERING and victim.progress < 80, victim.progress

    stack.gpu = None
    stack.workers()
    _wait_completed(victim.pk, FINISH_WITHIN)
    recover_s = elapsed(killed_at)
    _wait_terminal(job_ids, max(1.0, FINISH_WITHIN - recover_s))
    outcome = exactly_once(job_ids)
    attempts = _lost_then_ok(victim.pk, JobStage.RENDERING)
    report(
        {
            "fault": "SIGKILL gpu worker group mid-render",
            "accepted": outcome.accepted,
            "completed": outcome.completed,
            "duplicates": outcome.duplicates,
            "lost": outcome.lost,
            "unavailable_while_down": 0,
            "recover_s": recover_s,
            "killed_job_render_attempts": attempts,
        }
    )
    assert outcome.problems == [], outcome.problems
    assert outcome.completed == JOBS
    assert attempts[0] == JobAttempt.Outcome.LOST and attempts[-1] == JobAttempt.Outcome.OK


@dataclass
class Call:
    phase: str
    response: httpx.Response
    seconds: float

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def ok(self) -> bool:
        return self.status == 201


def _timed(phase: str, send) -> Call:
    started = time.monotonic()
    response = send()
    return Call(phase, response, time.monotonic() - started)


def _burst(stack, headers: dict, phase: str, count: int) -> list[Call]:
    def one(index: int) -> Call:
        with stack.client(headers=headers) as client:
            return _timed(phase, lambda: submit(client, marker=f"redis-{phase}-{index}"))

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_redis_restart_during_a_burst_loses_no_accepted_job(stack):
    gpu, cpu = stack.workers()
    processes = [stack.server.group, stack.beat, gpu, cpu]
    pids = [group.pid for group in processes]
    user, teen = UserFactory(), TeenFactory()
    headers, teen_headers = stack.headers(user), stack.headers(teen)
    probe = stack.client()
    with probe:
        assert probe.get("/readyz").status_code == 200
        assert probe.get("/api/v1/feed/for_you", headers=teen_headers).status_code == 200

        calls = _burst(stack, headers, "before", BEFORE)
        stack.redis.freeze()
        try:
            with ThreadPoolExecutor(2) as pool:
                frozen = pool.submit(_burst, stack, headers, "frozen", WHILE_FROZEN)
                probes = {"readyz_frozen": _timed("frozen", lambda: probe.get("/readyz"))}
                calls += frozen.result()
        finally:
            stack.redis.thaw()
        stack.redis.kill()
        killed_at = time.monotonic()
        # Submissions and the requests that need Redis itself, side by side, while it is down.
        with ThreadPoolExecutor(WHILE_DOWN + 1) as pool:
            down = pool.submit(_burst, stack, headers, "down", WHILE_DOWN)
            probes |= {
                "readyz": _timed("down", lambda: probe.get("/readyz")),
                "teen_for_you": _timed(
                    "down", lambda: probe.get("/api/v1/feed/for_you", headers=teen_headers)
                ),
                "healthz": _timed("down", lambda: probe.get("/healthz")),
            }
            calls += down.result()
        # A write that touches Redis only after its commit: cancelling a job accepted while
        # down (still queued: its message never left). Applied and 200, or refused and 503.
        target = next(job_id_of(c.response) for c in calls if c.phase == "down" and c.ok)
        cancel = _timed(
            "down",
            lambda: probe.post(f"/api/v1/generations/video_{target}/cancel", headers=headers),
        )
        time.sleep(max(0.0, DOWN_FOR - (time.monotonic() - killed_at)))
        stack.redis.start()
        restarted_at = time.monotonic()

        def recovered() -> bool:
            ready = probe.get("/readyz").status_code == 200
            feed = probe.get("/api/v1/feed/for_you", headers=teen_headers).status_code == 200
            return ready and feed

        with contextlib.suppress(TimeoutError):
            wait_for(recovered, 60, "the API to recover", interval=0.1)
        recover_s = elapsed(restarted_at)
        calls += _burst(stack, headers, "after", AFTER)

    accepted = [uuid.UUID(job_id_of(c.response)) for c in calls if c.ok]
    _wait_terminal(accepted, FINISH_WITHIN)
    drained_s = elapsed(restarted_at)
    cancelled = uuid.UUID(target) if cancel.status == 200 else None
    outcome = exactly_once([job_id for job_id in accepted if job_id != cancelled])
    down_calls = [c for c in calls if c.phase == "down"]
    down_calls += [c for c in probes.values() if c.phase == "down"] + [cancel]
    frozen_calls = [c for c in calls if c.phase == "frozen"] + [probes["readyz_frozen"]]
    unavailable = [c for c in down_calls + frozen_calls if c.status == 503]
    report(
        {
            "fault": "redis frozen, then SIGKILL + empty restart mid-burst",
            "accepted": len(accepted),
            "completed": outcome.completed,
            "duplicates": outcome.duplicates,
            "lost": outcome.lost,
            "unavailable_while_down": len(unavailable),
            "recover_s": recover_s,
            "submissions": len(calls),
            "accepted_while_down": sum(c.status == 201 for c in calls if c.phase == "down"),
            "slowest_while_down_s": round(max(c.seconds for c in down_calls), 2),
            "slowest_while_frozen_s": round(max(c.seconds for c in frozen_calls), 2),
            "all_done_after_restart_s": drained_s,
            "cancel_while_down": cancel.status,
        }
    )

    for call in calls:
        if call.status != 201:
            error = assert_error_shape(call.response, 503, "service_unavailable")
            assert call.response.headers.get("Retry-After"), error
    assert all(c.seconds < DOWN_LATENCY_LIMIT for c in down_calls), [c.seconds for c in down_calls]
    assert all(c.seconds < FROZEN_LATENCY_LIMIT for c in frozen_calls), [
        c.seconds for c in frozen_calls
    ]
    error = assert_error_shape(probes["readyz_frozen"].response, 503, "dependency_unavailable")
    assert error["param"] == "redis"
    error = assert_error_shape(probes["readyz"].response, 503, "dependency_unavailable")
    assert error["param"] == "redis"
    assert_error_shape(probes["teen_for_you"].response, 503, "feed_unavailable")
    assert probes["teen_for_you"].response.headers.get("Retry-After")
    assert probes["healthz"].status == 200
    assert recover_s < 60, "the API did not recover by itself"
    # The cancel while down either happened (200: the job ends cancelled, without a clip) or
    # did not (503: the job runs to completion like the others).
    if cancel.status == 200:
        job = GenerationJob.objects.get(pk=cancelled)
        assert job.status == JobStatus.CANCELLED and not Clip.objects.filter(job=job).exists()
    else:
        assert_error_shape(cancel.response, 503, "service_unavailable")
    # A refused submission left nothing behind; every accepted one finished exactly once.
    assert GenerationJob.objects.filter(user=user).count() == len(accepted)
    assert outcome.problems == [], outcome.problems
    assert outcome.completed == len(accepted) - (cancelled is not None)
    # Nothing was restarted to get there.
    assert all(group.alive() for group in processes)
    assert [group.pid for group in processes] == pids
