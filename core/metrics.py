"""Prometheus metrics, served at ``GET /metrics`` (text format; README "Metrics and logs").

Three kinds of series:

- **Per process**, kept by prometheus_client: HTTP request latency, timed by
  ``core.middleware.MetricsMiddleware``. Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set,
  every worker process writes its samples to files there and a scrape adds them up
  (``config/gunicorn.py`` empties the directory at start and tidies after a dead worker).
- **Cluster-wide, kept in Redis**: job stage durations and outcomes, moderation decisions,
  written by whichever process saw them (Celery workers on other machines included), and
  heartbeat gauges (open WebSockets per server process, GPU memory per worker process) that
  vanish with their process through a key TTL. Any web process answers a scrape with the whole
  cluster's numbers, and a worker restart loses nothing.
- **Read at scrape time**: broker queue depths, and unfinished jobs from the database.

Recording never fails its caller: a Redis error is logged, counted
(``montage_metrics_write_errors_total``) and the sample dropped.
"""

from __future__ import annotations

import bisect
import hmac
import json
import logging
import math
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager

import redis
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.errors import error_response

logger = logging.getLogger("montage.metrics")

# Redis is local to the cluster: anything slower than this is an outage, and a request or a job
# must not wait on it.
STORE_TIMEOUT = 0.5
# After a failed write, later samples are dropped without trying for this long, so an outage
# costs each request one timeout at most once per pause rather than every time.
PAUSE_AFTER_ERROR = 10.0
BROKER_TIMEOUT = 2.0

# --- Per-process series -------------------------------------------------------------------

LOCAL = CollectorRegistry()
HTTP_SECONDS = Histogram(
    "montage_http_request_duration_seconds",
    "Seconds from a request entering Django to its response, by URL pattern.",
    ["route", "method", "status"],
    registry=LOCAL,
)
WRITE_ERRORS = Counter(
    "montage_metrics_write_errors",
    "Cluster-wide samples this process could not record in Redis (dropped).",
    registry=LOCAL,
)

# Anything else a client sends as a method is one series, not one per invented verb.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"
_http_children: dict[tuple[str, str, int], object] = {}


def request_observe(route: str, method: str, status: int, seconds: float) -> None:
    """One request's latency. ``route`` is a URL pattern, never a path (bounded cardinality)."""
    method = method if method in _METHODS else "other"
    key = (route, method, status // 100)
    child = _http_children.get(key)
    if child is None:
        # labels() takes a lock and builds a tuple; the dict lookup above is several times
        # cheaper, and the key space is as bounded as the label values.
        child = HTTP_SECONDS.labels(route=route, method=method, status=f"{status // 100}xx")
        _http_children[key] = child
    child.observe(seconds)


# --- The cluster store (Redis) ------------------------------------------------------------


def _key(*parts: str) -> str:
    return ":".join((settings.METRICS_KEY_PREFIX, *parts))


class _Store:
    """A Redis client for the metrics keys with short timeouts and no retries, made per process
    (redis-py replaces its connections after a fork) and again if REDIS_URL changes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._url: str | None = None
        self._paused_until = 0.0

    def client(self) -> redis.Redis:
        url = settings.REDIS_URL
        if self._client is None or self._url != url:
            with self._lock:
                if self._client is None or self._url != url:
                    self._client = redis.Redis.from_url(
                        url,
                        socket_timeout=STORE_TIMEOUT,
                        socket_connect_timeout=STORE_TIMEOUT,
                        retry=Retry(NoBackoff(), 0),
                    )
                    self._url = url
                    self._paused_until = 0.0
        return self._client

    def write(self, fill, *, transactional: bool = False) -> bool:
        """Sends what ``fill(pipeline)`` queues in one round trip. Never raises."""
        if time.monotonic() < self._paused_until and self._url == settings.REDIS_URL:
            WRITE_ERRORS.inc()
            return False
        try:
            pipe = self.client().pipeline(transaction=transactional)
            fill(pipe)
            pipe.execute()
        except Exception:  # a metrics outage must never fail a request or a job
            WRITE_ERRORS.inc()
            self._paused_until = time.monotonic() + PAUSE_AFTER_ERROR
            logger.warning(
                "metrics write to Redis failed; samples are dropped for %.0f s",
                PAUSE_AFTER_ERROR,
                exc_info=True,
            )
            return False
        return True


STORE = _Store()


def _labels_field(values: tuple[str, ...]) -> str:
    # JSON escapes tabs, so a tab after it can separate a suffix unambiguously.
    return json.dumps(list(values), separators=(",", ":"))


class ClusterCounter:
    """A counter kept in one Redis hash: field = label values, value = count."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...]):
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames

    @property
    def key(self) -> str:
        return _key("counter", self.name)

    def inc_in(self, pipe, labels: tuple[str, ...], amount: int = 1) -> None:
        pipe.hincrby(self.key, _labels_field(labels), amount)

    def family(self, raw: dict[bytes, bytes]) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for field, value in sorted(raw.items()):
            family.add_metric(json.loads(field), float(value))
        return family


class ClusterHistogram:
    """A histogram kept in one Redis hash: for each label set, a field per bucket holding the
    count of observations that fell in it (not cumulative, so one HINCRBY records one) and a
    field with their sum. Buckets are stored by their bound, so changing the bounds later only
    coarsens old observations into the new buckets."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: tuple[str, ...],
        buckets: tuple[float, ...],
    ):
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.bounds = sorted(float(b) for b in buckets)

    @property
    def key(self) -> str:
        return _key("histogram", self.name)

    def observe_in(self, pipe, labels: tuple[str, ...], value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        bound = self.bounds[index] if index < len(self.bounds) else math.inf
        field = _labels_field(labels)
        pipe.hincrby(self.key, f"{field}\t{floatToGoString(bound)}", 1)
        pipe.hincrbyfloat(self.key, f"{field}\tsum", value)

    def family(self, raw: dict[bytes, bytes]) -> HistogramMetricFamily:
        bounds = [*self.bounds, math.inf]
        series: dict[str, dict] = {}
        for field, value in raw.items():
            labels, _, suffix = field.decode().rpartition("\t")
            entry = series.setdefault(labels, {"counts": [0] * len(bounds), "sum": 0.0})
            if suffix == "sum":
                entry["sum"] = float(value)
            else:
                entry["counts"][bisect.bisect_left(bounds, float(suffix))] += int(value)
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, entry in sorted(series.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(bounds, entry["counts"], strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            family.add_metric(json.loads(labels), buckets, entry["sum"])
        return family


JOB_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
JOB_STAGE_SECONDS = ClusterHistogram(
    "montage_job_stage_duration_seconds",
    "Seconds a worker spent on one attempt at a job stage (rendering, postprocessing).",
    ("engine", "stage"),
    JOB_BUCKETS,
)
JOB_SECONDS = ClusterHistogram(
    "montage_job_duration_seconds",
    "Seconds from a job's creation to its end, queueing included, by outcome.",
    ("engine", "outcome"),
    JOB_BUCKETS,
)
JOBS_FINISHED = ClusterCounter(
    "montage_jobs_finished",
    "Jobs that ended: completed, failed, blocked or cancelled.",
    ("engine", "outcome"),
)
MODERATION_DECISIONS = ClusterCounter(
    "montage_moderation_decisions",
    "Moderation decisions: screening of input and output, reports resolved, staff actions.",
    ("stage", "subject", "outcome"),
)
CLUSTER_METRICS = (JOB_STAGE_SECONDS, JOB_SECONDS, JOBS_FINISHED, MODERATION_DECISIONS)


def _after_commit(record) -> None:
    """Counts what a transaction did only once it is committed (at once outside one)."""
    transaction.on_commit(record, robust=True)


@contextmanager
def job_stage_timer(*, engine: str, stage: str):
    """Times one attempt at a job stage, however it ends."""
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - started
        STORE.write(lambda pipe: JOB_STAGE_SECONDS.observe_in(pipe, (engine, stage), seconds))


def job_finished(job) -> None:
    """Counts a job that has just reached a terminal status (completed, failed, blocked,
    cancelled), with its time since creation, once the transaction that ended it commits."""
    engine, outcome = job.engine, str(job.status)
    seconds = max(0.0, ((job.completed_at or timezone.now()) - job.created_at).total_seconds())

    def fill(pipe):
        JOBS_FINISHED.inc_in(pipe, (engine, outcome))
        JOB_SECONDS.observe_in(pipe, (engine, outcome), seconds)

    _after_commit(lambda: STORE.write(fill))


def moderation_decision(
    *, stage: str, subject: str, outcome: str, count: int = 1, after_commit: bool = False
) -> None:
    """``stage``: input / output (automatic screening), report (reports resolved), action
    (a staff decision). Screening refusals roll their request back, so screening counts at
    once; staff decisions count after their commit."""
    if count <= 0:
        return

    def record():
        STORE.write(
            lambda pipe: MODERATION_DECISIONS.inc_in(pipe, (stage, subject, str(outcome)), count)
        )

    if after_commit:
        _after_commit(record)
    else:
        record()


# --- Heartbeat gauges: values a live process refreshes, gone with it ----------------------


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class _Beacon:
    """A daemon thread that publishes this process's heartbeat gauges to Redis every third
    of METRICS_HEARTBEAT_TTL, and at once when woken. Each gauge set is a hash with that TTL,
    listed in an index set that the scrape prunes: a process that dies silently (SIGKILL, OOM,
    a lost node) drops out within one TTL."""

    def __init__(self):
        self._lock = threading.Lock()
        self._providers: dict[str, object] = {}
        self._published: set[str] = set()
        self._pid: int | None = None
        self._wake = threading.Event()

    def add(self, kind: str, provider) -> None:
        """``provider()`` returns ``{field: number}`` to publish, or None for nothing."""
        self._providers[kind] = provider
        self.wake()

    def wake(self) -> None:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    # Threads do not survive a fork: each process starts its own.
                    self._pid = os.getpid()
                    self._published = set()
                    self._wake = threading.Event()
                    threading.Thread(target=self._run, name="metrics-beacon", daemon=True).start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                self.publish()
            except Exception:  # the thread must outlive any one bad sample
                logger.warning("metrics heartbeat failed", exc_info=True)
            self._wake.wait(max(0.5, settings.METRICS_HEARTBEAT_TTL / 3))

    def publish(self) -> None:
        source = process_name()
        ttl = max(1, settings.METRICS_HEARTBEAT_TTL)
        samples = {kind: provider() for kind, provider in list(self._providers.items())}

        def fill(pipe):
            for kind, values in samples.items():
                key = _key("heartbeat", kind, source)
                if not values:
                    if kind in self._published:
                        pipe.delete(key)
                    continue
                index = _key("heartbeat", kind)
                pipe.delete(key)
                pipe.hset(key, mapping=values)
                pipe.expire(key, ttl)
                pipe.sadd(index, source)
                # The index only loses members at scrapes; unscraped, it still expires.
                pipe.expire(index, 24 * 3600)

        wanted = any(samples.values()) or self._published & samples.keys()
        if wanted and STORE.write(fill, transactional=True):
            self._published = {kind for kind, values in samples.items() if values}


BEACON = _Beacon()

_sockets: set[str] = set()
_sockets_lock = threading.Lock()


def _websocket_sample() -> dict[str, int]:
    with _sockets_lock:
        return {"open": len(_sockets)}


def websocket_opened(channel_name: str) -> None:
    """Called from the event loop: only touches memory and wakes the beacon thread."""
    with _sockets_lock:
        _sockets.add(channel_name)
    BEACON.add("websockets", _websocket_sample)


def websocket_closed(channel_name: str) -> None:
    with _sockets_lock:
        if channel_name not in _sockets:
            return
        _sockets.discard(channel_name)
    BEACON.wake()


def gpu_sample() -> dict[str, float] | None:
    """This process's GPU memory (and utilisation, where NVML is available), or None when it
    does not use CUDA. Only a process that has already initialised CUDA reports: asking an
    uninitialised one would create a CUDA context just to measure it."""
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)  # absent while another thread is still importing torch
    if cuda is None or not cuda.is_available() or not cuda.is_initialized():
        return None
    device = cuda.current_device()
    values = {
        f"{device}\tallocated": cuda.memory_allocated(device),
        f"{device}\treserved": cuda.memory_reserved(device),
        f"{device}\tmax_allocated": cuda.max_memory_allocated(device),
        f"{device}\ttotal": cuda.get_device_properties(device).total_memory,
    }
    try:
        values[f"{device}\tutilization"] = cuda.utilization(device) / 100
    except Exception as exc:  # needs NVML (pynvml); without it, utilisation is left out
        logger.debug("GPU utilisation unavailable: %s", exc)
    return values


def worker_process_started() -> None:
    """A Celery worker process publishes its GPU gauges while it lives (none on CPU)."""
    BEACON.add("gpu", gpu_sample)


_GPU_SERIES = {
    "allocated": (
        "montage_worker_gpu_memory_allocated_bytes",
        "GPU memory held by tensors in a worker process.",
    ),
    "reserved": (
        "montage_worker_gpu_memory_reserved_bytes",
        "GPU memory reserved by a worker process's caching allocator.",
    ),
    "max_allocated": (
        "montage_worker_gpu_memory_max_allocated_bytes",
        "Peak GPU memory held by tensors in a worker process since it started.",
    ),
    "total": ("montage_worker_gpu_memory_total_bytes", "Memory of the worker's GPU."),
    "utilization": (
        "montage_worker_gpu_utilization_ratio",
        "GPU busy fraction over the last sample period (NVML), 0-1.",
    ),
}


# --- Read at scrape time: the broker and the database -------------------------------------


def broker_queue_names() -> list[str]:
    """Every queue the configuration sends tasks to."""
    from celery import current_app

    names = {queue.name for queue in current_app.conf.task_queues or ()}
    names.add(settings.CELERY_TASK_DEFAULT_QUEUE)
    for route in settings.CELERY_TASK_ROUTES.values():
        if isinstance(route, dict) and route.get("queue"):
            names.add(route["queue"])
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        queue = (entry.get("options") or {}).get("queue")
        if queue:
            names.add(queue)
    return sorted(names)


def broker_queue_depths(names: list[str]) -> dict[str, int]:
    """Messages waiting in each queue (not those a worker has taken and not yet acknowledged).

    Redis: the kombu transport keeps one list per priority level (``gpu``, ``gpu:3``, ... with
    the configured ``sep`` and ``priority_steps``), so a queue's depth is the sum of their
    lengths. AMQP: a passive declare answers the queue's message count.
    """
    from kombu import Connection

    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS or {})
    options.update(socket_timeout=BROKER_TIMEOUT, socket_connect_timeout=BROKER_TIMEOUT)
    url = settings.CELERY_BROKER_URL
    with Connection(url, connect_timeout=BROKER_TIMEOUT, transport_options=options) as conn:
        conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)
        channel = conn.default_channel
        if conn.transport.driver_type == "redis":
            steps = sorted(set(channel.priority_steps))
            keys = {
                name: [name if not step else f"{name}{channel.sep}{step}" for step in steps]
                for name in names
            }
            pipe = channel.client.pipeline(transaction=False)
            for name in names:
                for key in keys[name]:
                    pipe.llen(key)
            lengths = iter(pipe.execute())
            return {name: sum(next(lengths) for _ in keys[name]) for name in names}
        depths = {}
        for name in names:
            try:
                depths[name] = channel.queue_declare(queue=name, passive=True).message_count
            except conn.channel_errors:
                # Not declared yet, so nothing was ever sent to it; the broker closed the
                # channel over the failed declare.
                depths[name] = 0
                channel = conn.channel()
        return depths


# The unfinished (status, stage) pairs a job passes through; reported even at zero so an
# alert on a backlog has a series to read.
UNFINISHED = (
    ("queued", "queued"),
    ("in_progress", "rendering"),
    ("in_progress", "rendered"),
    ("in_progress", "postprocessing"),
)


def unfinished_jobs() -> dict[tuple[str, str], int]:
    """Jobs not yet finished, by status and stage, from the database (through the status
    index: finished jobs, the bulk of the table, are never counted). Cached for
    METRICS_JOBS_CACHE_SECONDS across the web processes, so scrapes cost the database one
    query per period however many scrape."""
    cache_key = "metrics:unfinished-jobs"
    rows = cache.get(cache_key)
    if rows is None:
        # By name: core sits below the apps and imports none of them.
        job_model = apps.get_model("generation", "GenerationJob")
        rows = list(
            job_model.objects.filter(status__in=["queued", "in_progress"])
            .values_list("status", "stage")
            .annotate(count=Count("pk"))
            .order_by()
        )
        cache.set(cache_key, rows, timeout=settings.METRICS_JOBS_CACHE_SECONDS)
    counts = dict.fromkeys(UNFINISHED, 0)
    for status, stage, count in rows:
        counts[(status, stage)] = count
    return counts


# --- The collector behind /metrics --------------------------------------------------------


class ClusterCollector:
    """Everything not kept in this process: read from Redis, the broker and the database at
    each scrape. A source that cannot be read leaves its series out and says so in
    ``montage_metrics_source_up``."""

    def collect(self):
        up = GaugeMetricFamily(
            "montage_metrics_source_up",
            "Whether the last scrape could read each source (1) or not (0).",
            labels=["source"],
        )
        for source, read in (
            ("redis", self._from_redis),
            ("broker", self._from_broker),
            ("database", self._from_database),
        ):
            try:
                families = list(read())
            except Exception:  # one unreachable source must not empty the whole scrape
                logger.warning("metrics: could not read %s", source, exc_info=True)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    def _from_redis(self):
        client = STORE.client()
        kinds = ("websockets", "gpu")
        pipe = client.pipeline(transaction=False)
        for metric in CLUSTER_METRICS:
            pipe.hgetall(metric.key)
        for kind in kinds:
            pipe.smembers(_key("heartbeat", kind))
        results = pipe.execute()
        for metric, raw in zip(CLUSTER_METRICS, results, strict=False):
            yield metric.family(raw)
        sources = {
            kind: sorted(s.decode() for s in members)
            for kind, members in zip(kinds, results[len(CLUSTER_METRICS) :], strict=True)
        }
        pipe = client.pipeline(transaction=False)
        for kind in kinds:
            for source in sources[kind]:
                pipe.hgetall(_key("heartbeat", kind, source))
        values = iter(pipe.execute())
        live = {kind: {s: next(values) for s in sources[kind]} for kind in kinds}
        gone = {kind: [s for s, v in live[kind].items() if not v] for kind in kinds}
        if any(gone.values()):
            pipe = client.pipeline(transaction=False)
            for kind, names in gone.items():
                if names:
                    pipe.srem(_key("heartbeat", kind), *names)
            pipe.execute()

        sockets = GaugeMetricFamily(
            "montage_websocket_connections",
            "WebSocket connections open now, over every live ASGI server process.",
        )
        sockets.add_metric([], sum(int(v.get(b"open", 0)) for v in live["websockets"].values()))
        yield sockets

        gpu = {
            field: GaugeMetricFamily(name, doc, labels=["worker", "device"])
            for field, (name, doc) in _GPU_SERIES.items()
        }
        for worker, fields in sorted(live["gpu"].items()):
            for raw_field, value in sorted(fields.items()):
                device, _, field = raw_field.decode().partition("\t")
                if field in gpu:
                    gpu[field].add_metric([worker, device], float(value))
        yield from gpu.values()

    def _from_broker(self):
        depths = broker_queue_depths(broker_queue_names())
        family = GaugeMetricFamily(
            "montage_queue_messages",
            "Task messages waiting in each broker queue (all priorities).",
            labels=["queue"],
        )
        for name, depth in sorted(depths.items()):
            family.add_metric([name], depth)
        yield family

    def _from_database(self):
        family = GaugeMetricFamily(
            "montage_jobs",
            "Generation jobs not yet finished, by status and stage.",
            labels=["status", "stage"],
        )
        for (status, stage), count in sorted(unfinished_jobs().items()):
            family.add_metric([status, stage], count)
        yield family


CLUSTER = ClusterCollector()


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        # Every gunicorn worker's samples, from the files they write.
        multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry.register(LOCAL)
        # CPU, memory and file descriptors of this process (meaningless summed over several).
        registry.register(PROCESS_REGISTRY)
    registry.register(CLUSTER)
    return registry


def _refusal(request) -> HttpResponse | None:
    expected = settings.METRICS_TOKEN
    if not expected:
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return error_response(
            "Metrics need Authorization: Bearer <METRICS_TOKEN>.",
            status=401,
            code="token_required",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return error_response(
            "The metrics token is not valid.", status=403, code="invalid_metrics_token"
        )
    return None


@require_GET
def metrics_view(request):
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
