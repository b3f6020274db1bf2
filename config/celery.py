"""The Celery app: ``celery -A config worker -Q gpu,cpu``.

Queues: ``gpu`` (model inference; run those workers with ``--concurrency 1`` so one process
owns the device) and ``cpu`` (encode, sign, fingerprint, moderation, housekeeping).
"""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("gpu"), Queue("cpu"))
app.autodiscover_tasks()
