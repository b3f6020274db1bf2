"""Root conftest: factories from every app are registered here (STYLE.md, Tests)."""

pytest_plugins = ["tests.fixtures"]
