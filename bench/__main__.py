"""``make bench``: every benchmark in turn, one line per figure.

Run: ``python -m bench [--only NAME ...] [--contact-sheet PATH]``.

Each figure is a ratio to a baseline measured in the same run (the naive renderer, the clip's
own duration, a trivial endpoint, a no-op task, the render), followed by the raw numbers, so a
figure stays comparable on a busier or faster machine. A benchmark that fails is reported and
the others still run; the exit status says whether all passed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from bench import common

MODULES = (
    "render_previs",
    "media_pipeline",
    "generation",
    "watermark",
    "provenance",
    "lineage",
    "cameo_verify",
    "cameo",
    "moderation",
    "feed",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=MODULES, help="run only these")
    parser.add_argument(
        "--contact-sheet",
        type=Path,
        default=None,
        help="where the generation benchmark writes its contact sheet PNG",
    )
    args = parser.parse_args(argv)
    # Before any benchmark imports Django: the settings must see the benchmark's servers.
    common.configure()
    import importlib

    failed = []
    started = time.perf_counter()
    for name in args.only or MODULES:
        print(f"== bench.{name}", flush=True)
        module_started = time.perf_counter()
        module_argv = []
        if name == "generation" and args.contact_sheet:
            module_argv = ["--contact-sheet", str(args.contact_sheet)]
        try:
            importlib.import_module(f"bench.{name}").main(module_argv)
        except Exception:
            traceback.print_exc()
            print(f"bench.{name}: FAILED", flush=True)
            failed.append(name)
        print(f"   ({time.perf_counter() - module_started:.0f} s)", flush=True)
    total = time.perf_counter() - started
    verdict = f"failed: {', '.join(failed)}" if failed else "all ran"
    print(f"== bench: {total:.0f} s, {verdict}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
