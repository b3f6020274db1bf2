"""Request and job ids carried into every log line, and a JSON formatter for production.

The request id travels with the work it started: ``RequestIdMiddleware`` sets it for the
request, :func:`task_headers_stamp` copies it (and the job id, when one is set) into the
headers of every Celery task published meanwhile, and in the worker :func:`task_context_enter`
sets both again for as long as that task runs. A task published by a task carries them on.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
job_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="-")

# Celery message headers; namespaced so they never shadow a field of Celery's own request.
REQUEST_ID_HEADER = "montage_request_id"
JOB_ID_HEADER = "montage_job_id"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.job_id = job_id_var.get()
        return True


# What every LogRecord has; anything else on a record came from ``extra=`` and is logged too.
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "job_id",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, job_id, then any
    ``extra=`` fields, and ``exc`` (the traceback) / ``stack`` when present. Newlines inside
    a message or traceback are escaped, so a line is always a whole record."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
            "job_id": getattr(record, "job_id", job_id_var.get()),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in payload:
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exc"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=str)


# --- Celery: ids from the publishing process to the task's log lines ----------------------


def task_headers_stamp(headers: dict | None) -> None:
    """``before_task_publish``: the ids in effect where a task is sent go into its headers."""
    if headers is None:
        return
    request_id = request_id_var.get()
    if request_id != "-":
        headers.setdefault(REQUEST_ID_HEADER, request_id)
    job_id = job_id_var.get()
    if job_id != "-":
        headers.setdefault(JOB_ID_HEADER, job_id)


_task_tokens: dict[str, tuple[contextvars.Token, contextvars.Token]] = {}


def task_context_enter(task_id: str, request, job_id: str | None = None) -> None:
    """``task_prerun``: the task's log lines carry the ids its message brought (``job_id``,
    when given, for tasks whose argument names a job published without one)."""
    request_id = getattr(request, REQUEST_ID_HEADER, None) or "-"
    job = getattr(request, JOB_ID_HEADER, None) or job_id or "-"
    _task_tokens[task_id] = (request_id_var.set(str(request_id)), job_id_var.set(str(job)))


def task_context_exit(task_id: str) -> None:
    """``task_postrun``: back to what was set before (nothing, in a worker)."""
    tokens = _task_tokens.pop(task_id, None)
    if tokens is None:
        return
    request_token, job_token = tokens
    try:
        job_id_var.reset(job_token)
        request_id_var.reset(request_token)
    except ValueError:  # set in another context (a pool that moved the task): just clear
        job_id_var.set("-")
        request_id_var.set("-")
