"""End-to-end cameo tests: real workers with the full gate list from settings."""

from __future__ import annotations

import pytest

from tests.fixtures import start_asgi_server, start_worker


@pytest.fixture(autouse=True)
def _consent_gate_only():
    """Overrides the in-process tests' single-gate setting: here the web side and the worker
    both run every configured gate."""


@pytest.fixture(scope="module")
def cameo_worker(django_db_setup, tmp_path_factory):
    proc = start_worker(tmp_path_factory.mktemp("cameo-worker"), name="cameo")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def cameo_server(django_db_setup, tmp_path_factory):
    proc, base = start_asgi_server(tmp_path_factory.mktemp("cameo-asgi"))
    yield base
    proc.stop()
