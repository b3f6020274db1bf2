"""Structured logs: one JSON object per line, and the request id carried from the API request
into the Celery task messages it caused and into every log line of those tasks."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import pytest
from django.test import Client

from config.celery import app
from core.logging import (
    JOB_ID_HEADER,
    REQUEST_ID_HEADER,
    JsonFormatter,
    RequestIdFilter,
    job_id_var,
    request_id_var,
)
from generation.models import JobStatus
from tests.factories import UserFactory
from tests.fixtures import client_for, start_worker
from tests.generation.e2e.helpers import job_of, wait_finished
from tests.support.broker import redis_broker_channel

GENERATED = re.compile(r"^[0-9a-f]{32}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def capture(name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_each_record_is_one_json_line_with_ids_extras_and_the_traceback():
    logger, stream = capture("montage.test.json")
    request_token = request_id_var.set("req-42")
    job_token = job_id_var.set("job-7")
    try:
        logger.info("first line\nsecond line", extra={"attempt": 3, "queue": "gpu"})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
    finally:
        job_id_var.reset(job_token)
        request_id_var.reset(request_token)
    logger.warning("outside")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    first, failed, outside = (json.loads(line) for line in lines)
    assert TS.match(first.pop("ts"))
    assert first == {
        "level": "INFO",
        "logger": "montage.test.json",
        "message": "first line\nsecond line",
        "request_id": "req-42",
        "job_id": "job-7",
        "attempt": 3,
        "queue": "gpu",
    }
    assert (failed["level"], failed["message"], failed["job_id"]) == ("ERROR", "it failed", "job-7")
    assert failed["exc"].startswith("Traceback (most recent call last)")
    assert failed["exc"].endswith("ValueError: boom")
    assert (outside["request_id"], outside["job_id"]) == ("-", "-")
    assert "exc" not in outside


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("edge-7f3a.1:retry_2", True),
        ("A" * 128, True),
        ("A" * 129, False),
        ("has spaces", False),
        ("semi;colon", False),
        ("<script>", False),
        ("", False),
        (None, False),
    ],
)
def test_a_sane_request_id_is_echoed_and_anything_else_replaced(sent, echoed):
    headers = {"HTTP_X_REQUEST_ID": sent} if sent is not None else {}
    response = Client().get("/healthz", **headers)
    assert response.status_code == 200
    if echoed:
        assert response["X-Request-ID"] == sent
    else:
        assert GENERATED.match(response["X-Request-ID"]), response["X-Request-ID"]


def _gpu_messages() -> list[dict]:
    with redis_broker_channel() as channel:
        keys = {channel._q_for_pri("gpu", pri) for pri in channel.priority_steps}
        return [json.loads(raw) for key in keys for raw in channel.client.lrange(key, 0, -1)]


@pytest.mark.django_db(transaction=True)
def test_the_request_id_goes_into_the_task_message_the_request_enqueues():
    """No worker: the render message the API published waits in the broker, headers and all."""
    app.control.purge()
    try:
        api = client_for(UserFactory())
        sent = f"api-{uuid.uuid4().hex}"
        response = api.post(
            "/api/v1/generations",
            {"prompt": "a cube slides", "seconds": 1, "size": "512x512"},
            format="json",
            HTTP_X_REQUEST_ID=sent,
        )
        assert response.status_code == 201 and response["X-Request-ID"] == sent
        job = job_of(response.json())
        (message,) = _gpu_messages()
        assert message["headers"]["task"] == "generation.render"
        assert message["headers"]["argsrepr"] == repr((str(job.pk),))
        assert message["headers"][REQUEST_ID_HEADER] == sent
        # The API has no job in context: the worker takes the job id from the argument.
        assert JOB_ID_HEADER not in message["headers"]
        # A garbage id is not carried: the one the server made instead is.
        response = api.post(
            "/api/v1/generations",
            {"prompt": "a ball rolls", "seconds": 1, "size": "512x512"},
            format="json",
            HTTP_X_REQUEST_ID="bad id\twith tab",
        )
        made = response["X-Request-ID"]
        assert GENERATED.match(made)
        carried = {m["headers"].get(REQUEST_ID_HEADER) for m in _gpu_messages()}
        assert carried == {sent, made}
    finally:
        app.control.purge()


def _json_lines(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_log_line_of_a_job_in_the_worker_carries_its_request_and_job_id(tmp_path):
    """A real worker writing JSON logs. The first render fails on purpose, so the job's lines
    include an exception; the retry, sent with a second request id, completes under it through
    both stages (the post-processing task was published by the render task, not the API)."""
    app.control.purge()
    worker = start_worker(
        tmp_path,
        name="jsonlog",
        extra_env={
            "LOG_FORMAT": "json",
            "MONTAGE_FAILPOINTS": "render=fail",
            "MONTAGE_FAILPOINT_DIR": str(tmp_path),
        },
    )
    try:
        api = client_for(UserFactory())
        first, second = f"first-{uuid.uuid4().hex}", f"retry-{uuid.uuid4().hex}"
        response = api.post(
            "/api/v1/generations",
            {"prompt": "a cube slides", "seconds": 1, "size": "512x512"},
            format="json",
            HTTP_X_REQUEST_ID=first,
        )
        job = wait_finished(job_of(response.json()), 120)
        assert job.status == JobStatus.FAILED
        retried = api.post(f"/api/v1/generations/{job.public_id}/retry", HTTP_X_REQUEST_ID=second)
        assert retried.status_code == 200, retried.content
        job = wait_finished(job, 180)
        assert job.status == JobStatus.COMPLETED
    finally:
        worker.stop()

    records = _json_lines(worker.output())
    for record in records:
        assert {"ts", "level", "logger", "message", "request_id", "job_id"} <= set(record)
    job_id = str(job.pk)
    of_job = [r for r in records if r["job_id"] == job_id]
    # Every line logged under either request id belongs to this job, and the other way round.
    assert [r for r in records if r["request_id"] in (first, second)] == of_job
    assert {r["request_id"] for r in of_job} == {first, second}

    failed = [r for r in of_job if r["level"] == "ERROR" and r["logger"] == "montage.generation"]
    assert len(failed) == 1 and failed[0]["request_id"] == first
    assert "InjectedFault: fault injected at render" in failed[0]["exc"]

    def finished(task: str, request_id: str) -> list[dict]:
        return [
            r
            for r in of_job
            if r["request_id"] == request_id
            and r["message"].startswith(f"Task {task}[")
            and "succeeded" in r["message"]
        ]

    assert len(finished("generation.render", first)) == 1  # failed the job, ended normally
    assert len(finished("generation.render", second)) == 1
    assert len(finished("generation.postprocess", second)) == 1
