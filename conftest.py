"""Root conftest: the shared fixtures and every app's factories are registered here."""

pytest_plugins = ["tests.fixtures"]
