"""gunicorn settings: ``gunicorn -c config/gunicorn.py -w 4 -b 0.0.0.0:8000``.

Serves the WSGI app and keeps Prometheus' multiprocess mode sound when
``PROMETHEUS_MULTIPROC_DIR`` is set (it must be set in the environment before gunicorn
starts, so every worker inherits it): each worker process writes its request timings to files
in that directory and ``/metrics`` adds them up, whichever worker answers the scrape. Anything
else (bind, workers, timeouts) comes from the command line or ``GUNICORN_CMD_ARGS``.
"""

# Module names here are read by gunicorn as settings: helpers are underscored.
import glob as _glob
import os as _os

wsgi_app = "config.wsgi:application"


def _multiproc_dir() -> str:
    return _os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()


def on_starting(server):
    """Empties the directory before the first worker starts: files left by an earlier run
    would otherwise be added to this one's counts."""
    directory = _multiproc_dir()
    if not directory:
        return
    _os.makedirs(directory, exist_ok=True)
    for path in _glob.glob(_os.path.join(directory, "*.db")):
        _os.remove(path)


def child_exit(server, worker):
    """A worker that exited (recycled, crashed, killed) hands back its live-gauge files; its
    counters and histograms stay, so totals never go backwards."""
    if _multiproc_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Loads the URL conf, and with it every view module and what they import (the engines,
    torch), before the worker takes its first request: a cold first request on a busy machine
    could outlast the worker timeout and be killed, over and over."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018
