from __future__ import annotations

import re
import uuid

from django.conf import settings

from core.errors import error_response
from core.logging import request_id_var

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
API_PREFIXES = ("/api/", "/v1/")


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES)


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
