"""One domain exception hierarchy and one handler that renders the single error shape.

Every 4xx/5xx leaving the API has the OpenAI shape::

    {"error": {"message": "...", "type": "...", "param": "...", "code": "..."}}
"""

from __future__ import annotations

import logging
import math

import kombu.exceptions
import psycopg
import redis.exceptions
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections
from django.db import utils as db_utils
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.settings import api_settings as drf_settings

logger = logging.getLogger("montage.errors")

TYPE_BY_STATUS = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
}


def error_type_for(status: int) -> str:
    if status >= 500:
        return "server_error"
    return TYPE_BY_STATUS.get(status, "invalid_request_error")


def error_body(message: str, *, status: int, code: str | None, param: str | None = None) -> dict:
    return {
        "error": {
            "message": message,
            "type": error_type_for(status),
            "param": param,
            "code": code,
        }
    }


def error_response(
    message: str,
    *,
    status: int,
    code: str | None,
    param: str | None = None,
    headers: dict | None = None,
) -> JsonResponse:
    """The error shape for plain Django views and middleware (outside DRF)."""
    response = JsonResponse(
        error_body(message, status=status, code=code, param=param), status=status
    )
    for key, value in (headers or {}).items():
        response[key] = value
    return response


class MontageError(drf.APIException):
    """Base of every error the domain raises on purpose. Services raise these; APIs let them
    propagate to :func:`exception_handler`."""

    status_code = 400
    default_detail = "The request is invalid."
    default_code = "invalid_request"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message or self.default_detail, code or self.default_code)
        self.param = param
        self.code = code or self.default_code
        self.headers = headers or {}


class InvalidRequest(MontageError):
    pass


class AuthenticationRequired(MontageError):
    status_code = 401
    default_detail = "Authentication credentials were not provided or are invalid."
    default_code = "invalid_authentication"


class Forbidden(MontageError):
    status_code = 403
    default_detail = "You do not have permission to perform this action."
    default_code = "permission_denied"


class NotFound(MontageError):
    status_code = 404
    default_detail = "Not found."
    default_code = "not_found"


class Conflict(MontageError):
    status_code = 409
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class PayloadTooLarge(MontageError):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class Unprocessable(MontageError):
    status_code = 422
    default_detail = "The request could not be processed."
    default_code = "unprocessable"


class RateLimited(MontageError):
    status_code = 429
    default_detail = "Too many requests."
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str | None = None, *, retry_after: int, **kwargs):
        headers = {"Retry-After": str(max(1, int(retry_after)))}
        super().__init__(message, headers=headers, **kwargs)
        self.retry_after = retry_after


# Seconds a client is asked to wait before retrying a request that met a backing-service
# outage: long enough for a database failover or a Redis restart, short enough to feel live.
RETRY_AFTER_SECONDS = 5


class ServiceUnavailable(MontageError):
    status_code = 503
    default_detail = "A service this request depends on is unavailable; try again shortly."
    default_code = "service_unavailable"

    def __init__(
        self, message: str | None = None, *, retry_after: int = RETRY_AFTER_SECONDS, **kwargs
    ):
        headers = {"Retry-After": str(max(1, int(retry_after))), **(kwargs.pop("headers", {}))}
        super().__init__(message, headers=headers, **kwargs)
        self.retry_after = retry_after


# Errors that mean a backing service could not be reached or dropped the connection.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    # Django wraps the driver's errors; raw psycopg ones come from code that uses it directly.
    db_utils.OperationalError,
    db_utils.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    # BusyLoadingError (a Redis restarting from its data file) is a ConnectionError.
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    # A task publish that found no broker.
    kombu.exceptions.OperationalError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says a backing service (Postgres, Redis, the Celery broker) could not
    be reached or dropped the connection, rather than a fault in the code: the same request
    can succeed once the service is back, so it is answered 503 with Retry-After, not 500."""
    return isinstance(exc, OUTAGE_ERRORS)


def outage_response_body() -> dict:
    return error_body(ServiceUnavailable.default_detail, status=503, code="service_unavailable")


def outage_headers() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _join(path: str, key) -> str:
    """``lines`` + 1 -> ``lines[1]``; ``lines[1]`` + ``qty`` -> ``lines[1].qty``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key == drf_settings.NON_FIELD_ERRORS_KEY:
        return path
    return f"{path}.{key}" if path else str(key)


def _flatten_validation(detail, path: str = "") -> list[tuple[str, str, str]]:
    """[(param, message, code)] from DRF's nested ValidationError detail.

    List items arrive as integer keys (ListField; ListSerializer under DRF's
    LIST_SERIALIZER_ERRORS_AS_DICT) or as a list of per-item dicts (ListSerializer without
    it); both name the item ``field[index]``.
    """
    out: list[tuple[str, str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            out.extend(_flatten_validation(value, _join(path, key)))
    elif isinstance(detail, list):
        if all(isinstance(item, drf.ErrorDetail | str) for item in detail):
            for item in detail:
                out.append((path, str(item), getattr(item, "code", "invalid")))
        else:
            for index, item in enumerate(detail):
                out.extend(_flatten_validation(item, _join(path, index)))
    else:
        out.append((path, str(detail), getattr(detail, "code", "invalid")))
    return out


def _validation_body(exc: drf.ValidationError) -> dict:
    problems = _flatten_validation(exc.detail) or [("", "Invalid input.", "invalid")]
    param, _, code = problems[0]
    message = "; ".join(f"{p}: {m}" if p else m for p, m, _ in problems)
    return error_body(message, status=400, code=code or "invalid", param=param or None)


DEFAULT_CHALLENGE = 'Bearer realm="api"'


def set_rollback() -> None:
    """rest_framework.views.set_rollback, restated: importing DRF's views (or serializers)
    here would import the authentication classes, which import this module."""
    for db in connections.all():
        if db.settings_dict["ATOMIC_REQUESTS"] and db.in_atomic_block:
            db.set_rollback(True)


def _api_exception_message_and_code(exc: drf.APIException) -> tuple[str, str]:
    """A readable message and one code from any APIException.

    Some libraries (simplejwt's InvalidToken) carry a dict detail such as
    ``{"detail": ..., "code": ..., "messages": [...]}``; its repr must never reach a client.
    """
    detail = exc.detail
    code = None
    if isinstance(detail, dict):
        code = detail.get("code") or getattr(detail.get("detail"), "code", None)
        detail = detail.get("detail") or next(iter(detail.values()), "")
    if isinstance(detail, list):
        detail = detail[0] if detail else ""
    code = code or getattr(detail, "code", None) or exc.default_code
    return str(detail) or str(exc.default_detail), str(code)


def exception_handler(exc, context) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception becomes the one error shape.

    Unexpected exceptions become a 500 with a generic message; the traceback goes to the log
    (with the request id), never to the client.
    """
    # Whatever the view wrote is undone under ATOMIC_REQUESTS, as DRF's own handler does.
    set_rollback()
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = Forbidden()
    elif isinstance(exc, RequestDataTooBig | TooManyFieldsSent):
        exc = PayloadTooLarge()
    elif isinstance(exc, DjangoValidationError):
        # A model or field refusing a value (e.g. a malformed UUID in a lookup) is bad input,
        # not a server fault.
        from rest_framework.serializers import as_serializer_error

        exc = drf.ValidationError(as_serializer_error(exc))

    if isinstance(exc, drf.ValidationError):
        return Response(_validation_body(exc), status=400)

    if isinstance(exc, MontageError):
        headers.update(exc.headers)
        if exc.status_code == 401:
            headers.setdefault("WWW-Authenticate", DEFAULT_CHALLENGE)
        body = error_body(str(exc.detail), status=exc.status_code, code=exc.code, param=exc.param)
        return Response(body, status=exc.status_code, headers=headers)

    if isinstance(exc, drf.APIException):
        status = exc.status_code
        message, code = _api_exception_message_and_code(exc)
        if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
            # DRF downgrades these to 403 on views without authenticators; every API view
            # accepts a bearer token, so the challenge always applies.
            status = 401
            request = context.get("request")
            authenticate_header = None
            if request is not None and context.get("view") is not None:
                authenticate_header = context["view"].get_authenticate_header(request)
            headers["WWW-Authenticate"] = authenticate_header or DEFAULT_CHALLENGE
        if isinstance(exc, drf.Throttled):
            code = "rate_limit_exceeded"
            if exc.wait is not None:
                headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
        if isinstance(exc, drf.MethodNotAllowed):
            code = "method_not_allowed"
        return Response(
            error_body(message, status=status, code=code), status=status, headers=headers
        )

    request = context.get("request")
    if is_outage(exc):
        # No traceback: the cause is outside the process, and /readyz names the service.
        logger.warning(
            "%s %s: backing service unavailable: %s: %s",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            type(exc).__name__,
            exc,
        )
        return Response(outage_response_body(), status=503, headers=outage_headers())
    logger.exception(
        "unhandled exception in %s %s",
        getattr(request, "method", "?"),
        getattr(request, "path", "?"),
    )
    return Response(
        error_body(
            "The server had an error processing the request.", status=500, code="internal_error"
        ),
        status=500,
    )
