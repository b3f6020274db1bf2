"""The Celery app: ``celery -A config worker -Q gpu,cpu``.

Queues: ``gpu`` (model inference; run those workers with ``--concurrency 1`` so one process
owns the device) and ``cpu`` (encode, sign, fingerprint, moderation, housekeeping).
"""

import os

from celery import Celery
from celery.signals import worker_process_init
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
