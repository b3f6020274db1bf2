import pytest

from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _consent_gate_only(settings):
    """In-process tests exercise the consent gate on its own; end-to-end tests run real workers
    with the full gate list from settings."""
    settings.GENERATION_GATES = ["cameo.gates.consent_gate"]


@pytest.fixture
def alice(db):
    return UserFactory(handle="alice")


@pytest.fixture
def bob(db):
    return UserFactory(handle="bob")
