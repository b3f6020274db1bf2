"""Fault tests: the real server, workers and beat, with a worker, Redis or PostgreSQL killed
or restarted under them. Select them with ``-m fault``; ``FAULT_REPORT=path`` collects each
test's result row as a JSON line."""

from __future__ import annotations

import httpx
import pytest

from accounts.services import api_key_create
from tests.fault import procs


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "fault: kills or restarts real processes (workers, Redis, PostgreSQL)"
    )


# The stack's settings: a short lease and a fast reaper, so that a dead worker's job is taken
# over, and a job whose message was lost is re-sent, within seconds rather than the production
# minute or two; quotas out of the way of a burst. The re-send of waiting jobs stays slower
# than a worker's pick-up, so that a killed job comes back through its lapsed lease, not
# through a copy of its message sent while it waited.
STACK_ENV = {
    "GENERATION_LEASE_SECONDS": "4",
    "GENERATION_REAP_SECONDS": "2",
    "GENERATION_REQUEUE_AFTER_SECONDS": "20",
    "GENERATION_CONCURRENT_LIMIT": "50",
    "GENERATION_DAILY_LIMIT": "1000",
}


class Stack:
    """One test-owned Redis (broker, cache and channel layer), the REST server, beat, and at
    most one GPU and one CPU worker, kept warm from test to test until one is killed."""

    def __init__(self, directory):
        self.directory = directory
        self.redis = procs.RedisServer(directory)
        self.redis.start()
        self.env = procs.montage_env(REDIS_URL=self.redis.url, **STACK_ENV)
        self.cpu: procs.Group | None = None
        # Started side by side: each spends most of its start importing the project, and the
        # GPU worker then loads its engines.
        self.gpu: procs.Group | None = procs.start_worker(
            directory, self.env, queues="gpu", name="gpu"
        )
        self.beat = procs.start_beat(directory, self.env)
        self.server = procs.Server(directory, self.env)
        procs.wait_beat(self.beat)

    def workers(self, *, cpu_env: dict | None = None) -> tuple[procs.Group, procs.Group]:
        """A live GPU and CPU worker; a CPU worker with ``cpu_env`` is always a new one."""
        if cpu_env is not None and self.cpu is not None:
            self.cpu.stop()
            self.cpu = None
        if self.gpu is None or not self.gpu.alive():
            self.gpu = procs.start_worker(self.directory, self.env, queues="gpu", name="gpu")
        if self.cpu is None or not self.cpu.alive():
            env = self.env | (cpu_env or {})
            self.cpu = procs.start_worker(self.directory, env, queues="cpu", name="cpu")
        return procs.wait_ready(self.gpu), procs.wait_ready(self.cpu)

    def headers(self, user) -> dict[str, str]:
        _, raw = api_key_create(user=user, name="fault")
        return {"Authorization": f"Bearer {raw}"}

    def client(self, user=None, *, headers: dict | None = None) -> httpx.Client:
        if user is not None:
            headers = self.headers(user)
        return httpx.Client(base_url=self.server.base, headers=headers or {}, timeout=30)

    def close(self) -> None:
        procs.stop_groups([self.gpu, self.cpu, self.beat, self.server.group])
        self.redis.stop()


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    built = None
    try:
        built = Stack(tmp_path_factory.mktemp("fault-stack"))
        yield built
    finally:
        if built is not None:
            built.close()
        procs.stop_all()
