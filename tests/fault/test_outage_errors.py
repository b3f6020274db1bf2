"""Which errors mean "a backing service is out of reach" and are answered 503 with
Retry-After (the error shape on API paths, a short text page elsewhere), through the real
middleware stack; any other exception stays a 500."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.fault.outage_urls import ERRORS

pytestmark = [pytest.mark.fault, pytest.mark.urls("tests.fault.outage_urls")]

OUTAGES = [kind for kind in ERRORS if kind != "bug"]
BODY = {
    "error": {
        "message": "A service this request depends on is unavailable; try again shortly.",
        "type": "server_error",
        "param": None,
        "code": "service_unavailable",
    }
}


@pytest.mark.parametrize("kind", OUTAGES)
def test_an_outage_under_a_drf_view_is_503_in_the_error_shape(kind):
    response = Client().get(f"/api/v1/failing/{kind}")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "5"
    assert response.json() == BODY


@pytest.mark.parametrize("kind", OUTAGES)
def test_an_outage_under_a_plain_view_is_503_with_retry_after(kind):
    response = Client().get(f"/staff/failing/{kind}")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    assert response["Retry-After"] == "5"


def test_a_fault_in_the_code_stays_a_500():
    client = Client(raise_request_exception=False)
    api = client.get("/api/v1/failing/bug")
    assert api.status_code == 500
    assert api.json()["error"]["code"] == "internal_error"
    assert "Retry-After" not in api
    page = client.get("/staff/failing/bug")
    assert page.status_code == 500
    assert "Retry-After" not in page
