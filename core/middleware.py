from __future__ import annotations

import logging
import re
import time
import uuid

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from core.errors import error_response, is_outage, outage_headers, outage_response_body
from core.logging import request_id_var
from core.metrics import UNMATCHED_ROUTE, request_observe

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
API_PREFIXES = ("/api/", "/v1/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


class MetricsMiddleware:
    """Times every request into ``montage_http_request_duration_seconds``, labelled by the URL
    pattern that matched (``api/v1/generations/<str:generation_id>``), never the path: ids in
    paths would make a series per object. First in MIDDLEWARE, so the time includes the other
    middleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        request_observe(
            match.route if match is not None else UNMATCHED_ROUTE,
            request.method,
            response.status_code,
            time.perf_counter() - started,
        )
        return response


class RequestIdMiddleware:
    """Takes X-Request-ID from the client or a proxy (when well-formed) or makes one, puts it
    on every log line of the request, and echoes it in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestSizeLimitMiddleware:
    """Refuses an oversized body by its Content-Length, before any of it is read (413).

    Every body is capped at MAX_REQUEST_BYTES. Bodies other than multipart (JSON, form) are
    also capped at DATA_UPLOAD_MAX_MEMORY_SIZE here, whichever way a parser reads them: some
    DRF versions read the stream directly, past Django's own check on ``request.body``.
    Multipart file parts stream to disk; only their non-file fields count against that limit,
    which Django's multipart parser enforces (RequestDataTooBig, rendered as 413 by the API
    handler). Chunked bodies without Content-Length are bounded by those same checks.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            return error_response(
                "Content-Length must be a non-negative integer.",
                status=400,
                code="invalid_content_length",
            )
        limit = settings.MAX_REQUEST_BYTES
        memory_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content_type = request.META.get("CONTENT_TYPE", "")
        if memory_limit is not None and not content_type.startswith("multipart/"):
            limit = min(limit, memory_limit)
        if length > limit:
            return error_response(
                f"The request body is {length} bytes; the limit is {limit} bytes.",
                status=413,
                code="request_too_large",
            )
        return self.get_response(request)


# Codes for what Django answers itself, matching what the API raises for the same status.
_CODE_BY_STATUS = {
    400: "invalid_request",
    401: "invalid_authentication",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    429: "rate_limit_exceeded",
    500: "internal_error",
}


def _code_for(status: int, reason: str) -> str:
    return _CODE_BY_STATUS.get(status) or re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_")


class ApiErrorMiddleware:
    """Gives API paths the error shape for what Django itself answers outside DRF views
    (CSRF failures, 405 from plain views, debug-mode 404/500 pages, and so on): any non-JSON
    4xx/5xx on /api/ or /v1/ is rewritten. The body is not carried over: it may be a debug page
    with a traceback. Unmatched URLs and crashes are handled by config.urls' handlers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_api_path(request.path)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            message = getattr(response, "reason_phrase", "") or "Request failed."
            code = _code_for(response.status_code, message) or "request_failed"
            replacement = error_response(message, status=response.status_code, code=code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response


class ServiceUnavailableMiddleware:
    """Answers 503 with Retry-After, not 500, when a view outside DRF (the staff console,
    the admin, plain Django views) fails because Postgres, Redis or the broker is out of
    reach: the error shape on API paths, a short plain-text page elsewhere. DRF views get the
    same answer from core.errors.exception_handler. Last in MIDDLEWARE, so it sees the view's
    exception first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_outage(exception):
            return None
        logging.getLogger("montage.errors").warning(
            "%s %s: backing service unavailable: %s: %s",
            request.method,
            request.path,
            type(exception).__name__,
            exception,
        )
        if is_api_path(request.path):
            response = JsonResponse(outage_response_body(), status=503)
        else:
            response = HttpResponse(
                "Service temporarily unavailable; try again shortly.\n",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        for key, value in outage_headers().items():
            response[key] = value
        return response
