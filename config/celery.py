"""The Celery app: ``celery -A config worker -Q gpu,cpu``.

Queues: ``gpu`` (model inference; run those workers with ``--concurrency 1`` so one process
owns the device) and ``cpu`` (encode, sign, fingerprint, moderation, housekeeping).
"""

import os

from celery import Celery
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
