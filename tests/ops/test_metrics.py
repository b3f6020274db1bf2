"""GET /metrics: every series appears after real activity, read the way Prometheus reads it.

Requests go through the Django test client; jobs run on a real Celery worker process through
the real pipeline; queue depths are read from the real Redis broker; WebSocket counts come from
real uvicorn servers. The cluster-wide series live in Redis and outlast a test, so tests compare
a scrape before with one after.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from accounts.services import api_key_create
from config.celery import app
from core import metrics
from generation.models import GenerationJob, JobStage, JobStatus
from generation.services import job_stop
from tests.factories import UserFactory
from tests.fixtures import (
    BIN,
    Proc,
    client_for,
    free_port,
    process_env,
    start_asgi_server,
    start_worker,
    wait_for,
)
from tests.generation.e2e.helpers import job_of, wait_finished
from tests.moderation.helpers import make_clip, staff
from tests.support.broker import queue_length
from tests.support.errors import assert_error

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(**headers) -> Samples:
    response = Client().get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def scrape_when(predicate, timeout: float = 10) -> Samples:
    """The first scrape for which ``predicate(samples)`` holds."""

    def ready():
        samples = scrape()
        return samples if predicate(samples) else None

    return wait_for(ready, timeout, "the metrics to show it", interval=0.2)


def value(samples: Samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def named(samples: Samples, prefix: str) -> Samples:
    return {key: v for key, v in samples.items() if key[0].startswith(prefix)}


def purge_queues() -> None:
    app.control.purge()


def post_generation(api, prompt: str = "a cube slides", **headers):
    return api.post(
        "/api/v1/generations",
        {"prompt": prompt, "seconds": 1, "size": "512x512"},
        format="json",
        **headers,
    )


# --- Requests -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_requests_are_timed_under_their_url_pattern_never_their_path():
    api = client_for(UserFactory())
    before = scrape()
    for job_id in ("video_0000aaaa", "video_0000bbbb"):
        assert api.get(f"/api/v1/generations/{job_id}").status_code == 404
    assert api.get("/api/v1/generations").status_code == 200
    assert Client().get("/no/such/route/42").status_code == 404
    assert Client().generic("BREW", "/healthz").status_code == 405
    after = scrape()

    count = "montage_http_request_duration_seconds_count"
    detail = {"route": "api/v1/generations/<str:job_id>", "method": "GET", "status": "4xx"}
    # Two ids, one series.
    assert value(after, count, **detail) - value(before, count, **detail) == 2
    listing = {"route": "api/v1/generations", "method": "GET", "status": "2xx"}
    assert value(after, count, **listing) - value(before, count, **listing) == 1
    unmatched = {"route": "unmatched", "method": "GET", "status": "4xx"}
    assert value(after, count, **unmatched) - value(before, count, **unmatched) == 1
    # An invented method is one series, not one per verb.
    other = {"route": "healthz", "method": "other", "status": "4xx"}
    assert value(after, count, **other) - value(before, count, **other) == 1
    routes = {dict(labels).get("route") for name, labels in named(after, "montage_http")}
    assert not [r for r in routes if r and ("0000aaaa" in r or "42" in r)]
    # The buckets are cumulative and end in +Inf = count.
    inf = value(after, "montage_http_request_duration_seconds_bucket", **detail, le="+Inf")
    assert inf == value(after, count, **detail)


# --- The token ----------------------------------------------------------------------------

TOKEN = "scrape-token-0123456789"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("authorization", "status", "code"),
    [
        (None, 401, "token_required"),
        ("Basic c2NyYXBlOnRva2Vu", 401, "token_required"),
        ("Bearer", 401, "token_required"),
        ("Bearer    ", 401, "token_required"),
        ("Bearer wrong-token", 403, "invalid_metrics_token"),
        (f"Bearer {TOKEN}x", 403, "invalid_metrics_token"),
        ("Bearer ünïcode", 403, "invalid_metrics_token"),
    ],
)
def test_a_missing_malformed_or_wrong_token_is_refused(settings, authorization, status, code):
    settings.METRICS_TOKEN = TOKEN
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    response = Client().get("/metrics", **headers)
    assert_error(response, status, code=code)
    assert b"montage_" not in response.content
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


@pytest.mark.django_db
def test_the_right_token_is_served_and_no_token_setting_means_open(settings):
    settings.METRICS_TOKEN = TOKEN
    assert "montage_metrics_source_up" in {
        name for name, _ in scrape(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    }
    settings.METRICS_TOKEN = ""
    assert value(scrape(), "montage_metrics_source_up", source="redis") == 1


@pytest.mark.django_db
def test_only_get_is_answered():
    assert Client().post("/metrics").status_code == 405


# --- Read at scrape time ------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_depth_counts_every_priority_level_of_each_queue():
    """No worker runs: messages sent to the real broker wait, one list per priority level."""
    purge_queues()
    try:
        before = scrape()
        assert value(before, "montage_queue_messages", queue="gpu") == 0
        for priority in (0, 3, 9):
            app.send_task(
                "tests.record_user_visibility", args=["0", "q"], queue="gpu", priority=priority
            )
        for priority in (0, 5):
            app.send_task(
                "tests.record_user_visibility", args=["0", "q"], queue="cpu", priority=priority
            )
        after = scrape()
        assert value(after, "montage_queue_messages", queue="gpu") == 3 == queue_length("gpu")
        assert value(after, "montage_queue_messages", queue="cpu") == 2 == queue_length("cpu")
        assert value(after, "montage_metrics_source_up", source="broker") == 1
    finally:
        purge_queues()
    assert value(scrape(), "montage_queue_messages", queue="gpu") == 0


def _job(user, status: str, stage: str) -> GenerationJob:
    return GenerationJob.objects.create(
        user=user,
        prompt="a cube",
        model="sora-2",
        engine="previs",
        seconds=1,
        size="512x512",
        seed=1,
        params={},
        params_hash="0" * 64,
        status=status,
        stage=stage,
    )


@pytest.mark.django_db
def test_unfinished_jobs_are_counted_by_status_and_stage_and_cached_briefly(settings):
    settings.METRICS_JOBS_CACHE_SECONDS = 60
    user = UserFactory()
    _job(user, JobStatus.QUEUED, JobStage.QUEUED)
    _job(user, JobStatus.QUEUED, JobStage.QUEUED)
    _job(user, JobStatus.IN_PROGRESS, JobStage.RENDERED)
    _job(user, JobStatus.COMPLETED, JobStage.DONE)
    samples = scrape()
    jobs = {
        (dict(labels)["status"], dict(labels)["stage"]): v
        for (name, labels), v in samples.items()
        if name == "montage_jobs"
    }
    assert jobs == {
        ("queued", "queued"): 2,
        ("in_progress", "rendering"): 0,
        ("in_progress", "rendered"): 1,
        ("in_progress", "postprocessing"): 0,
    }
    # Within the cache period a new job is not counted yet; after it, it is.
    _job(user, JobStatus.QUEUED, JobStage.QUEUED)
    assert value(scrape(), "montage_jobs", status="queued", stage="queued") == 2
    cache.delete("metrics:unfinished-jobs")
    assert value(scrape(), "montage_jobs", status="queued", stage="queued") == 3


# --- Job durations and outcomes from a real worker -----------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_records_stage_durations_outcomes_and_screening(tmp_path):
    """The first render fails on purpose (a fault point), the second job completes: the
    worker process writes both outcomes and every stage attempt where the web reads them."""
    purge_queues()
    worker = start_worker(
        tmp_path,
        name="metrics",
        extra_env={"MONTAGE_FAILPOINTS": "render=fail", "MONTAGE_FAILPOINT_DIR": str(tmp_path)},
    )
    try:
        api = client_for(UserFactory())
        before = scrape()
        failed = wait_finished(job_of(post_generation(api).json()), 120)
        assert failed.status == JobStatus.FAILED
        completed = wait_finished(job_of(post_generation(api, "a ball rolls").json()), 180)
        assert completed.status == JobStatus.COMPLETED
        # A stage's time is recorded as the worker leaves it, just after the commit that
        # the row shows.
        stage = "montage_job_stage_duration_seconds_count"
        labels = {"engine": "previs", "stage": "postprocessing"}
        after = scrape_when(lambda s: value(s, stage, **labels) > value(before, stage, **labels))
    finally:
        worker.stop()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    finished = "montage_jobs_finished_total"
    assert delta(finished, engine="previs", outcome="failed") == 1
    assert delta(finished, engine="previs", outcome="completed") == 1
    assert delta(finished, engine="previs", outcome="cancelled") == 0
    assert delta(stage, engine="previs", stage="rendering") == 2  # the failed attempt counts
    assert delta(stage, engine="previs", stage="postprocessing") == 1
    assert delta("montage_job_stage_duration_seconds_sum", engine="previs", stage="rendering") > 0
    total = "montage_job_duration_seconds"
    assert delta(f"{total}_count", engine="previs", outcome="completed") == 1
    # The very creation-to-completion time of the row, recorded by the worker.
    expected = (completed.completed_at - completed.created_at).total_seconds()
    assert delta(f"{total}_sum", engine="previs", outcome="completed") == pytest.approx(
        expected, abs=1e-3
    )
    # Output screening ran in the worker too.
    decisions = "montage_moderation_decisions_total"
    assert delta(decisions, stage="output", subject="job", outcome="allow") == 1
    # A CPU-only worker publishes no GPU gauges at all (no zeros, no placeholders).
    assert not named(after, "montage_worker_gpu")
    assert delta("montage_metrics_write_errors_total") == 0


@pytest.mark.django_db(transaction=True)
def test_cancelled_and_blocked_jobs_count_where_they_end(tmp_path):
    """No worker: a queued job cancelled through the API and one stopped for a safety reason
    end in the web process, and are counted there."""
    purge_queues()
    try:
        api = client_for(UserFactory())
        before = scrape()
        cancelled = job_of(post_generation(api).json())
        response = api.post(f"/api/v1/generations/{cancelled.public_id}/cancel")
        assert response.status_code == 200, response.content
        blocked = job_of(post_generation(api, "a ball rolls").json())
        job_stop(job=blocked, actor="system", code="cameo_revoked", reason="consent withdrawn")
        after = scrape()
    finally:
        purge_queues()
    finished = "montage_jobs_finished_total"
    for outcome, expected in (("cancelled", 1), ("blocked", 1), ("completed", 0)):
        change = value(after, finished, engine="previs", outcome=outcome) - value(
            before, finished, engine="previs", outcome=outcome
        )
        assert change == expected, outcome


# --- Moderation ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_moderation_decisions_are_counted_by_stage_subject_and_outcome():
    purge_queues()
    try:
        before = scrape()
        api = client_for(UserFactory())
        refused = post_generation(api, "a man b e h e a d e d in the street, g0re everywhere")
        assert_error(refused, 400, code="content_policy_violence", param="prompt")
        assert post_generation(api).status_code == 201
        clip = make_clip(UserFactory())
        reported = api.post(
            "/api/v1/reports",
            {"reason": "hate", "subject_type": "clip", "subject_id": clip.job.public_id},
            format="json",
        )
        assert reported.status_code == 201, reported.content
        moderator = client_for(staff())
        case_id = moderator.get("/api/v1/moderation/cases").json()["data"][0]["id"]
        decided = moderator.post(
            f"/api/v1/moderation/cases/{case_id}/decide",
            {"decision": "remove", "reason_code": "hate_speech"},
            format="json",
        )
        assert decided.status_code == 200, decided.content
        after = scrape()
    finally:
        purge_queues()
    changes = {}
    for (name, labels), now in after.items():
        if name == "montage_moderation_decisions_total" and now != before.get((name, labels), 0):
            series = dict(labels)
            changes[(series["stage"], series["subject"], series["outcome"])] = now - before.get(
                (name, labels), 0
            )
    # Exactly these, nothing else: two screenings of prompts, a report resolved, an action.
    assert changes == {
        ("input", "job", "block"): 1,
        ("input", "job", "allow"): 1,
        ("report", "clip", "actioned"): 1,
        ("action", "clip", "remove"): 1,
    }


# --- WebSockets ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_open_websockets_are_summed_over_servers_and_a_killed_one_drops_out(tmp_path):
    import asyncio

    from websockets.asyncio.client import connect

    ttl = 3
    env = {"METRICS_HEARTBEAT_TTL": str(ttl)}
    first, first_base = start_asgi_server(_mkdir(tmp_path / "a"), env)
    second, second_base = start_asgi_server(_mkdir(tmp_path / "b"), env)
    _, key = api_key_create(user=UserFactory(), name="ws")

    def sockets_open() -> float:
        return value(scrape(), "montage_websocket_connections")

    baseline = sockets_open()

    def wait_count(expected: float, timeout: float = 15) -> None:
        wait_for(lambda: sockets_open() == baseline + expected, timeout, f"{expected} sockets")

    async def scenario():
        def url(base):
            return base.replace("http://", "ws://") + "/ws/"

        headers = {"Authorization": f"Bearer {key}"}
        opened = []
        for base in (first_base, second_base, second_base):
            ws = await connect(url(base), additional_headers=headers, proxy=None, open_timeout=10)
            await asyncio.wait_for(ws.recv(), 10)  # "ready": the server has counted it
            opened.append(ws)
        await asyncio.to_thread(wait_count, 3)
        await opened[2].close()
        await asyncio.to_thread(wait_count, 2)
        # A server killed outright never runs disconnect: its count expires with its TTL.
        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait()
        started = time.monotonic()
        await asyncio.to_thread(wait_count, 1, ttl + 10)
        assert time.monotonic() - started <= ttl + 10
        await opened[1].close()
        await asyncio.to_thread(wait_count, 0)

    try:
        asyncio.run(scenario())
    finally:
        first.stop()
        second.stop()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- GPU gauges ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_gpu_gauges_are_published_only_by_a_process_using_cuda():
    """On a CPU build nothing is sampled or published; on CUDA the process's own allocation
    shows up under its name."""
    import torch

    metrics.worker_process_started()
    if not torch.cuda.is_available():
        assert metrics.gpu_sample() is None
        metrics.BEACON.publish()
        assert not named(scrape(), "montage_worker_gpu")
        return
    held = torch.ones(1024 * 1024, device="cuda")  # 4 MiB
    sample = metrics.gpu_sample()
    device = torch.cuda.current_device()
    assert sample[f"{device}\tallocated"] >= held.numel() * 4
    metrics.BEACON.publish()
    allocated = value(
        scrape(),
        "montage_worker_gpu_memory_allocated_bytes",
        worker=metrics.process_name(),
        device=str(device),
    )
    assert allocated >= held.numel() * 4


# --- Failures of the metrics store --------------------------------------------------------


@pytest.mark.django_db
def test_a_redis_outage_drops_samples_logs_and_never_raises(settings, caplog):
    def write_errors() -> float:
        return metrics.LOCAL.get_sample_value("montage_metrics_write_errors_total")

    errors = write_errors()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with caplog.at_level("WARNING", logger="montage.metrics"):
        with metrics.job_stage_timer(engine="previs", stage="rendering"):
            pass
        started = time.monotonic()
        metrics.moderation_decision(stage="input", subject="job", outcome="allow")
        # Paused after the first failure: no second timeout.
        assert time.monotonic() - started < 0.05
        response = Client().get("/metrics")
    assert write_errors() - errors == 2
    logged = [r.getMessage() for r in caplog.records if r.name == "montage.metrics"]
    assert logged[0].startswith("metrics write to Redis failed")
    # The scrape still answers, saying which source it could not read.
    assert response.status_code == 200
    samples = parse(response.content.decode())
    assert value(samples, "montage_metrics_source_up", source="redis") == 0
    assert value(samples, "montage_metrics_source_up", source="broker") == 1
    assert value(samples, "montage_metrics_source_up", source="database") == 1


# --- gunicorn, several worker processes ---------------------------------------------------


def _get(url: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return response.read()


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_are_added_up_and_a_dead_workers_requests_still_count(tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    # Left by an earlier run: config/gunicorn.py must clear it, or the scrape would fail on it.
    (directory / "histogram_99999.db").write_bytes(b"not a metrics file")
    port = free_port()
    env = process_env() | {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    args = [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "-w", "2", "-b", f"127.0.0.1:{port}"]
    server = Proc(args, tmp_path / "gunicorn.log", env)
    base = f"http://127.0.0.1:{port}"
    served = 0  # /healthz answers, each one a sample

    def healthz() -> None:
        nonlocal served
        assert _get(f"{base}/healthz") == b'{"status": "ok"}'
        served += 1

    def serving() -> bool:
        """Probed on an unmatched path, so the probes (some of which the client gives up on
        while a cold worker is still answering) never touch the counted series."""
        if server.popen.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{server.output()}")
        try:
            _get(f"{base}/probe", timeout=2)
        except urllib.error.HTTPError as error:
            return error.code == 404
        except OSError:
            return False
        return False

    def healthz_count() -> float:
        samples = parse(_get(f"{base}/metrics").decode())
        return value(
            samples,
            "montage_http_request_duration_seconds_count",
            route="healthz",
            method="GET",
            status="2xx",
        )

    try:
        wait_for(serving, 60, "gunicorn to serve")
        assert not (directory / "histogram_99999.db").exists()
        wait_for(lambda: len(_children(server.popen.pid)) == 2, 30, "two workers")
        assert healthz_count() == served
        for _ in range(20):
            healthz()
        assert healthz_count() == served
        # Every worker dies; the master starts new ones. What the dead ones served stays.
        old = _children(server.popen.pid)
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: len(set(_children(server.popen.pid)) - set(old)) == 2, 30, "new workers")
        wait_for(serving, 30, "gunicorn to serve again")
        for _ in range(10):
            healthz()
        # Each scrape reads the same files: whichever worker answers gives the whole count.
        assert {healthz_count() for _ in range(4)} == {served}
    finally:
        server.stop()
