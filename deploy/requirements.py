"""Splits pyproject.toml's runtime dependencies for the image build (deploy/Dockerfile).

    python deploy/requirements.py pyproject.toml TORCH_OUT REQUIREMENTS_OUT

TORCH_OUT gets the one torch pin, installed first from the PyTorch index of the image's
variant (CPU or CUDA build of the same version); REQUIREMENTS_OUT gets every runtime
dependency, torch included, so pip checks the installed build against the pin.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

TORCH_PIN = re.compile(r"^torch\s*==\s*[0-9][^,;\s]*$")


class RequirementsError(Exception):
    pass


def split(pyproject: Path) -> tuple[str, list[str]]:
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    torch = [dep for dep in dependencies if re.match(r"^torch\b(?![-_.\w])", dep.strip())]
    if len(torch) != 1 or not TORCH_PIN.match(torch[0].strip()):
        # Both image variants must carry the same torch release as development machines.
        raise RequirementsError(f"pyproject.toml must pin torch with == exactly once: {torch}")
    return torch[0].strip(), [dep.strip() for dep in dependencies]


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    pyproject, torch_out, requirements_out = (Path(arg) for arg in argv)
    try:
        torch, dependencies = split(pyproject)
    except RequirementsError as exc:
        print(f"requirements.py: {exc}", file=sys.stderr)
        return 1
    torch_out.write_text(torch + "\n")
    requirements_out.write_text("\n".join(dependencies) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
