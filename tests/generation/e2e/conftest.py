"""Fixtures for end-to-end generation tests: real workers, a real server, the real engine."""

from __future__ import annotations

import pytest

from tests.fixtures import start_asgi_server, start_worker


@pytest.fixture(scope="module")
def generation_worker(django_db_setup, tmp_path_factory):
    """One worker on both queues, as `make run` starts it."""
    proc = start_worker(tmp_path_factory.mktemp("gen-worker"), name="gen")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def montage_server(django_db_setup, tmp_path_factory):
    proc, base = start_asgi_server(tmp_path_factory.mktemp("gen-asgi"))
    yield base
    proc.stop()
