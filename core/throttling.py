"""Fixed-window rate limits counted atomically in Redis, per client IP and per user.

Rates are read from settings on every request (``MONTAGE_THROTTLE_RATES``), unlike DRF's
built-in throttles which freeze them at import time.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger("montage.throttling")

_PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


def parse_rate(rate: str) -> tuple[int, int]:
    """'120/min' -> (120, 60). A malformed rate is a configuration error, named as such."""
    count, _, period = rate.partition("/")
    try:
        limit, seconds = int(count), _PERIODS[period.strip().lower()]
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(
            f"Throttle rate {rate!r} is not <count>/<period>, e.g. '120/min' (periods: "
            "s, sec, second, m, min, minute, h, hour, d, day)"
        ) from exc
    if limit < 0:
        raise ImproperlyConfigured(f"Throttle rate {rate!r} has a negative count")
    return limit, seconds


def client_ip(request) -> str:
    # Behind a trusted proxy (TRUSTED_PROXY_COUNT > 0) the client is the n-th address from the
    # right of X-Forwarded-For; otherwise only the socket's peer address can be trusted.
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or "unknown"


class _WindowThrottle(BaseThrottle):
    scope = ""

    def ident(self, request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        ident = self.ident(request)
        rate = settings.MONTAGE_THROTTLE_RATES.get(self.scope)
        if ident is None or not rate:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = f"throttle:{self.scope}:{ident}:{window}"
        try:
            cache.add(key, 0, timeout=period + 1)
            count = cache.incr(key)
        except ValueError:
            # The key expired between add and incr (a request stalled past the window's
            # end): it is the first of its window.
            count = 1
        except RedisError:
            # Availability over precision: a Redis outage must not fail every API request.
            # /readyz reports the outage; the limit resumes when Redis answers.
            logger.warning("throttle %s skipped: Redis unavailable", self.scope, exc_info=True)
            return True
        self._wait = (window + 1) * period - now
        return count <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


class IPRateThrottle(_WindowThrottle):
    scope = "ip"

    def ident(self, request):
        return client_ip(request)


class UserRateThrottle(_WindowThrottle):
    scope = "user"

    def ident(self, request):
        user = getattr(request, "user", None)
        return str(user.pk) if user is not None and user.is_authenticated else None


class AuthRateThrottle(_WindowThrottle):
    """Login, registration and token refresh: a tight per-IP limit against guessing."""

    scope = "auth"

    def ident(self, request):
        return client_ip(request)
