"""Engines by name, loaded once per process and reused (a GPU worker keeps its model warm)."""

from __future__ import annotations

import threading

from django.conf import settings
from django.utils.module_loading import import_string

from generation.engines.base import Engine

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def engine_names() -> list[str]:
    return sorted(settings.GENERATION_ENGINES)


def get_engine(name: str) -> Engine:
    engine = _engines.get(name)
    if engine is not None:
        return engine
    with _lock:
        engine = _engines.get(name)
        if engine is None:
            engine = import_string(settings.GENERATION_ENGINES[name])()
            _engines[name] = engine
    return engine
