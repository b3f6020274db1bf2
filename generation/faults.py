"""Named fault-injection points for crash tests of real worker processes.

``MONTAGE_FAILPOINTS=render,sign`` with ``MONTAGE_FAILPOINT_DIR=/some/dir`` makes the first
process to reach a listed point write its pid to ``<dir>/<point>`` and stop there, so a test
can SIGKILL it at exactly that moment; ``render=fail`` makes it raise instead. Later arrivals
pass through (the file exists), which lets the redelivered or retried attempt finish. Unset
(always, outside tests), every point is a no-op.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_SECONDS = 300


class InjectedFault(RuntimeError):
    """Raised at a point configured as ``<point>=fail``."""


def checkpoint(name: str) -> None:
    points = os.environ.get("MONTAGE_FAILPOINTS")
    if not points:
        return
    modes = dict(item.partition("=")[::2] for item in points.split(","))
    if name not in modes:
        return
    directory = Path(os.environ["MONTAGE_FAILPOINT_DIR"])
    try:
        fd = os.open(directory / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(str(os.getpid()))
    if modes[name] == "fail":
        raise InjectedFault(f"fault injected at {name}")
    time.sleep(PAUSE_SECONDS)
