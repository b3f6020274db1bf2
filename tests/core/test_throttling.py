"""Fixed-window rate limits in Redis: per client IP, per user, per auth endpoint."""

from __future__ import annotations

import types

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from rest_framework.test import APIClient

from core import throttling
from core.throttling import AuthRateThrottle, IPRateThrottle, client_ip, parse_rate
from tests.core.test_errors import error_of
from tests.fixtures import client_for

REGISTER = "/api/v1/auth/register"


@pytest.fixture
def rates(settings):
    """Sets some rates for this test; the others keep their (high) defaults."""

    def set_rates(**overrides):
        settings.MONTAGE_THROTTLE_RATES = {**settings.MONTAGE_THROTTLE_RATES, **overrides}

    return set_rates


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, and only its clock, under the test's control."""
    now = {"t": 6000.0}
    monkeypatch.setattr(throttling, "time", types.SimpleNamespace(time=lambda: now["t"]))
    return now


def statuses(client, n: int, path: str = REGISTER, **extra) -> list[int]:
    return [client.post(path, {}, format="json", **extra).status_code for _ in range(n)]


# --- parse_rate -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [
        ("120/min", (120, 60)),
        ("1/s", (1, 1)),
        ("5/second", (5, 1)),
        ("30/m", (30, 60)),
        ("100/hour", (100, 3600)),
        ("10/day", (10, 86400)),
        ("7/ MIN ", (7, 60)),
        ("0/min", (0, 60)),
    ],
)
def test_parse_rate(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["", "10", "ten/min", "10/fortnight", "10/", "/min", "-1/min"])
def test_malformed_rate_is_a_configuration_error(rate):
    with pytest.raises(ImproperlyConfigured, match="Throttle rate"):
        parse_rate(rate)


# --- Counting ---------------------------------------------------------------------------


def test_counts_exactly_the_limit_within_one_window(settings, clock):
    settings.MONTAGE_THROTTLE_RATES = {"ip": "3/s"}
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.7")
    throttle = IPRateThrottle()
    assert [throttle.allow_request(request, None) for _ in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert throttle.wait() == pytest.approx(1.0)
    clock["t"] += 0.75
    assert throttle.allow_request(request, None) is False
    assert throttle.wait() == pytest.approx(0.25)
    clock["t"] += 0.25  # the next one-second window
    assert throttle.allow_request(request, None) is True


def test_unset_scope_never_throttles(settings):
    settings.MONTAGE_THROTTLE_RATES = {}
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.7")
    assert all(AuthRateThrottle().allow_request(request, None) for _ in range(50))


@pytest.mark.django_db
def test_window_resets_and_retry_after_counts_down(anon_client, rates, clock):
    rates(ip="2/min")
    assert statuses(anon_client, 2) == [400, 400]

    response = anon_client.post(REGISTER, {}, format="json")
    assert error_of(response, 429)["code"] == "rate_limit_exceeded"
    assert response["Retry-After"] == "60"

    clock["t"] = 6059.2
    response = anon_client.post(REGISTER, {}, format="json")
    assert response.status_code == 429
    assert response["Retry-After"] == "1"

    clock["t"] = 6060.0
    assert statuses(anon_client, 3) == [400, 400, 429]


# --- Scopes -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_ip_scope_counts_each_client_address_separately(rates):
    rates(ip="3/min")
    client = APIClient()
    assert statuses(client, 4, REMOTE_ADDR="198.51.100.1") == [400, 400, 400, 429]
    assert statuses(client, 1, REMOTE_ADDR="198.51.100.2") == [400]


@pytest.mark.django_db
def test_ip_scope_covers_authenticated_callers_too(user, rates):
    rates(ip="2/min")
    api = client_for(user)
    assert [api.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.django_db
def test_forwarded_for_is_ignored_without_a_trusted_proxy(rates):
    # Otherwise any client could dodge its limit by inventing X-Forwarded-For values.
    rates(ip="2/min")
    client = APIClient()
    codes = [
        client.post(REGISTER, {}, format="json", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
        for i in range(3)
    ]
    assert codes == [400, 400, 429]


@pytest.mark.django_db
def test_forwarded_for_names_the_client_behind_a_trusted_proxy(rates, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    rates(ip="2/min")
    client = APIClient()
    spoofed_then_real = "203.0.113.9, 198.51.100.50"
    assert statuses(client, 3, HTTP_X_FORWARDED_FOR=spoofed_then_real) == [400, 400, 429]
    assert statuses(client, 1, HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.51") == [400]


def test_client_ip_picks_the_hop_the_trusted_proxies_saw(settings):
    factory = RequestFactory()
    request = factory.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.1.1.1, 2.2.2.2")
    assert client_ip(request) == "10.0.0.1"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "2.2.2.2"
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request) == "1.1.1.1"
    settings.TRUSTED_PROXY_COUNT = 3  # fewer hops than proxies: the header is not trusted
    assert client_ip(request) == "10.0.0.1"


@pytest.mark.django_db
def test_user_scope_counts_each_user_separately(user, other_user, rates):
    rates(user="2/min")
    first, second = client_for(user), client_for(other_user)
    assert [first.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 429]
    assert second.get("/api/v1/me").status_code == 200


@pytest.mark.django_db
def test_user_scope_follows_the_user_across_addresses(user, rates):
    rates(user="2/min")
    api = client_for(user)
    codes = [api.get("/api/v1/me", REMOTE_ADDR=f"198.51.100.{i}").status_code for i in range(3)]
    assert codes == [200, 200, 429]


@pytest.mark.django_db
def test_auth_scope_is_tighter_than_the_ip_scope(rates):
    rates(auth="2/min", ip="100/min")
    client = APIClient()
    assert statuses(client, 3) == [400, 400, 429]
    # The auth scope only guards auth endpoints; other anonymous routes still answer.
    assert client.get("/api/v1/me").status_code == 401


@pytest.mark.django_db
def test_rates_are_read_live(anon_client, rates):
    rates(auth="1/min")
    assert statuses(anon_client, 2) == [400, 429]
    rates(auth="5/min")
    assert statuses(anon_client, 1) == [400]


@pytest.mark.django_db
def test_redis_outage_lets_requests_through(anon_client, rates, settings):
    rates(auth="1/min")
    closed_port = "redis://127.0.0.1:9/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": closed_port,
            "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
    }
    assert statuses(anon_client, 3) == [400, 400, 400]
