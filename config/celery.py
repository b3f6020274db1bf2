"""The Celery app: ``celery -A config worker -Q gpu,cpu``.

Queues: ``gpu`` (model inference; run those workers with ``--concurrency 1`` so one process
owns the device) and ``cpu`` (encode, sign, fingerprint, moderation, housekeeping).
"""

import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun, worker_process_init
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue gets its own exchange and routing key. Declared by name alone, both would bind to
# the default exchange "cpu" with key "cpu", so a message published by exchange and key (as
# RabbitMQ routing and some tools do) would land in both queues and run twice.
app.conf.task_queues = (
    Queue("gpu", Exchange("gpu", type="direct"), routing_key="gpu"),
    Queue("cpu", Exchange("cpu", type="direct"), routing_key="cpu"),
)
app.conf.task_default_exchange = "cpu"
app.conf.task_default_routing_key = "cpu"
app.autodiscover_tasks()


# Tasks whose first argument is a generation job's id: their log lines carry it from the first
# one, including those written before the job is claimed.
JOB_TASKS = frozenset({"generation.render", "generation.postprocess"})


@before_task_publish.connect
def _stamp_log_ids(headers=None, **kwargs):
    """The request (and job) a task was sent for go with it, so the worker logs under them."""
    from core.logging import task_headers_stamp

    task_headers_stamp(headers)


@task_prerun.connect
def _enter_log_ids(task_id=None, task=None, args=None, **kwargs):
    from core.logging import task_context_enter

    job_id = str(args[0]) if task.name in JOB_TASKS and args else None
    task_context_enter(task_id, task.request, job_id)


@task_postrun.connect
def _exit_log_ids(task_id=None, **kwargs):
    from core.logging import task_context_exit

    task_context_exit(task_id)


@worker_process_init.connect
def _publish_worker_gauges(**kwargs):
    """Each worker process keeps its GPU gauges alive in the metrics store (on CUDA only)."""
    from core.metrics import worker_process_started

    worker_process_started()


@worker_process_init.connect
def _warm_engines(**kwargs):
    """A worker process that consumes ``gpu`` loads its engines (weights, text model) as it
    starts, so the first job it takes begins rendering at once instead of after the load."""
    from django.conf import settings

    consuming = set(app.amqp.queues.consume_from or ())
    if "gpu" not in consuming or not settings.GENERATION_WARM_ENGINES:
        return
    from generation.engines.registry import engine_names, get_engine

    for name in engine_names():
        engine = get_engine(name)
        if hasattr(engine, "warm_up"):
            engine.warm_up()
