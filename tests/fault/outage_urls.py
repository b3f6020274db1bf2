"""Routes whose views fail the way a backing-service outage makes real views fail, for
test_outage_errors: one DRF view under /api/ and one plain Django view outside it."""

from __future__ import annotations

import kombu.exceptions
import psycopg
import redis
from django.db import InterfaceError, OperationalError
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

ERRORS = {
    "db": lambda: OperationalError("connection to server at 127.0.0.1 failed: refused"),
    "db_closed": lambda: InterfaceError("connection already closed"),
    "psycopg": lambda: psycopg.OperationalError("server closed the connection unexpectedly"),
    "redis": lambda: redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379."),
    "redis_timeout": lambda: redis.TimeoutError("Timeout reading from socket"),
    "redis_loading": lambda: redis.BusyLoadingError("Redis is loading the dataset in memory"),
    "broker": lambda: kombu.exceptions.OperationalError("Error 111 connecting to broker"),
    "bug": lambda: ValueError("a fault in the code"),
}


class FailingApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def get(self, request, kind: str):
        raise ERRORS[kind]()


def failing_page(request, kind: str):
    raise ERRORS[kind]()


urlpatterns = [
    path("api/v1/failing/<str:kind>", FailingApi.as_view()),
    path("staff/failing/<str:kind>", failing_page),
]
