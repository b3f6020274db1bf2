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
    """Refuses a body larger than MAX_REQUEST_BYTES before any of it is read (413).

    Bodies sent without Content-Length (chunked) are still bounded: Django raises
    RequestDataTooBig past DATA_UPLOAD_MAX_MEMORY_SIZE, which the API handler turns into 413.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return error_response(
                "Content-Length is not a number.", status=400, code="invalid_content_length"
            )
        limit = settings.MAX_REQUEST_BYTES
        if length > limit:
            return error_response(
                f"The request body is {length} bytes; the limit is {limit} bytes.",
                status=413,
                code="request_too_large",
            )
        return self.get_response(request)


class ApiErrorMiddleware:
    """Gives API paths the error shape for what Django itself answers outside DRF views
    (CSRF failures, 405 from plain views, and so on): any non-JSON 4xx/5xx on /api/ or /v1/
    is rewritten. Unmatched URLs and crashes are handled by config.urls' handler404/500."""

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
            code = message.lower().replace(" ", "_")
            replacement = error_response(message, status=response.status_code, code=code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response
