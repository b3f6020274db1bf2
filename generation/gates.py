"""Gates: how apps above ``generation`` take part in a job without being imported by it.

``settings.GENERATION_GATES`` lists dotted paths (ordered, like MIDDLEWARE). Each names a
callable ``gate(job, phase)`` called with ``phase="create"`` inside the transaction that creates
the job, and with ``phase="complete"`` inside the transaction that would complete it. A gate
refuses by raising :class:`GateRefused` and may annotate ``job.annotations`` (saved by the
caller). At ``"complete"``, ``job.output`` is the post-processing result
(``generation.pipeline.Produced``: the stored video's name, its per-second fingerprints, its
watermark payload), so a gate can inspect the output without finding it itself. The
consent gate (cameo), screening gate (moderation) and lineage gate (remix) plug in here.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

CREATE = "create"
COMPLETE = "complete"


class GateRefused(Exception):
    """A gate said no. At creation the request gets ``status`` (a 4xx); at completion the job
    becomes ``blocked`` with this code and reason, and its output is discarded."""

    def __init__(self, code: str, reason: str, *, status: int = 403, param: str | None = None):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status
        self.param = param


@cache
def _load(paths: tuple[str, ...]):
    return [import_string(path) for path in paths]


def gates():
    return _load(tuple(settings.GENERATION_GATES))


def run_gates(job, phase: str) -> None:
    for gate in gates():
        gate(job, phase)
