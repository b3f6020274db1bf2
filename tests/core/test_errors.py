"""Every error leaving the API has the one OpenAI-style shape, with the right status and headers.

Shape: ``{"error": {"message", "type", "param", "code"}}`` and nothing else.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from tests.core.urls_for_tests import LEAKED_TEXT

ERROR_KEYS = {"message", "type", "param", "code"}
GENERIC_500 = "The server had an error processing the request."
REGISTER = "/api/v1/auth/register"


def error_of(response, status: int) -> dict:
    """The error object of ``response``, after checking the status and the exact shape."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    return body["error"]


def registration(**overrides) -> dict:
    return {
        "handle": "newcomer",
        "password": "a long enough passphrase 42",
        "birth_date": "1990-05-17",
        **overrides,
    }


# --- 400 --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_validation_error_names_the_first_bad_field_and_lists_every_problem(anon_client):
    error = error_of(anon_client.post(REGISTER, {}, format="json"), 400)
    assert error == {
        "message": (
            "handle: This field is required.; password: This field is required.; "
            "birth_date: This field is required."
        ),
        "type": "invalid_request_error",
        "param": "handle",
        "code": "required",
    }
    assert User.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_validation_error_param_is_the_path_into_nested_input(anon_client):
    body = {"name": "ok", "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 0}]}
    error = error_of(anon_client.post("/api/v1/test/orders", body, format="json"), 400)
    assert error == {
        "message": "lines[1].qty: Ensure this value is greater than or equal to 1.",
        "type": "invalid_request_error",
        "param": "lines[1].qty",
        "code": "min_value",
    }


@pytest.mark.django_db
def test_service_error_names_its_param(anon_client):
    response = anon_client.post(REGISTER, registration(password="short"), format="json")
    error = error_of(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "password"
    assert error["code"] == "weak_password"
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_malformed_json_body_is_a_parse_error(anon_client):
    response = anon_client.post(REGISTER, data='{"handle": ', content_type="application/json")
    error = error_of(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "parse_error"
    assert error["param"] is None
    assert error["message"].startswith("JSON parse error")
    assert User.objects.count() == 0


@pytest.mark.parametrize("length", ["lots", "-5"])
def test_malformed_content_length_is_refused_before_the_view(anon_client, length):
    response = anon_client.post(
        REGISTER, data="{}", content_type="application/json", CONTENT_LENGTH=length
    )
    assert error_of(response, 400) == {
        "message": "Content-Length must be a non-negative integer.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_content_length",
    }


@pytest.mark.urls("tests.core.urls_for_tests")
def test_django_validation_error_from_a_model_is_400_not_500():
    response = APIClient(raise_request_exception=False).get("/api/v1/test/model-refusal")
    assert error_of(response, 400) == {
        "message": "starts_at: Enter a valid date/time.",
        "type": "invalid_request_error",
        "param": "starts_at",
        "code": "invalid",
    }


# --- 401 / 403 --------------------------------------------------------------------------


@pytest.mark.django_db
def test_missing_credentials_are_401_with_www_authenticate(anon_client):
    response = anon_client.get("/api/v1/me")
    assert error_of(response, 401) == {
        "message": "Authentication credentials were not provided.",
        "type": "authentication_error",
        "param": None,
        "code": "not_authenticated",
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("token", "code"),
    [("mk_deadbeef_notarealkey", "invalid_api_key"), ("not.a.jwt", "invalid_token")],
)
def test_invalid_credentials_are_401_with_www_authenticate(anon_client, token, code):
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = anon_client.get("/api/v1/me")
    error = error_of(response, 401)
    assert error["type"] == "authentication_error"
    assert error["code"] == code
    assert error["param"] is None
    # The challenge may add RFC 6750 error details; the scheme and realm are fixed.
    assert response["WWW-Authenticate"].startswith('Bearer realm="api"')


@pytest.mark.urls("tests.core.urls_for_tests")
def test_any_401_carries_a_challenge_even_when_the_raiser_gave_none():
    response = APIClient().get("/api/v1/test/auth-required")
    assert error_of(response, 401) == {
        "message": "Authentication credentials were not provided or are invalid.",
        "type": "authentication_error",
        "param": None,
        "code": "invalid_authentication",
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.urls("tests.core.urls_for_tests")
def test_library_error_with_dict_detail_renders_a_plain_message():
    # simplejwt's InvalidToken carries {"detail", "code", "messages"}; its repr must not leak.
    response = APIClient().get("/api/v1/test/dict-detail")
    assert error_of(response, 401) == {
        "message": "Token is invalid",
        "type": "authentication_error",
        "param": None,
        "code": "token_not_valid",
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.django_db
def test_domain_refusal_is_403_permission_error(anon_client):
    response = anon_client.post(REGISTER, registration(birth_date="2020-01-01"), format="json")
    assert error_of(response, 403) == {
        "message": "You must be at least 13 to use Montage.",
        "type": "permission_error",
        "param": "birth_date",
        "code": "under_minimum_age",
    }
    assert User.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_drf_permission_denied_is_403(api):
    response = api.get("/api/v1/test/staff-only")
    assert error_of(response, 403) == {
        "message": "You do not have permission to perform this action.",
        "type": "permission_error",
        "param": None,
        "code": "permission_denied",
    }


@pytest.mark.urls("tests.core.urls_for_tests")
def test_django_permission_denied_in_a_plain_view_is_403_without_its_text():
    response = Client().get("/api/v1/test/forbidden-plain")
    assert error_of(response, 403) == {
        "message": "You do not have permission to perform this action.",
        "type": "permission_error",
        "param": None,
        "code": "permission_denied",
    }
    assert LEAKED_TEXT.encode() not in response.content


# --- 404 / 405 --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/v1/no-such-thing", "/api/v2/me"])
def test_unknown_api_route_is_404_in_the_error_shape(path):
    response = Client().get(path)
    assert error_of(response, 404) == {
        "message": f"No route {path}.",
        "type": "invalid_request_error",
        "param": None,
        "code": "not_found",
    }


def test_unknown_non_api_route_stays_html():
    response = Client().get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_unknown_object_is_404(api):
    response = api.get("/api/v1/users/nobody_here")
    assert error_of(response, 404) == {
        "message": "No such user.",
        "type": "invalid_request_error",
        "param": None,
        "code": "user_not_found",
    }


@pytest.mark.django_db
def test_wrong_method_is_405_and_keeps_allow(anon_client):
    response = anon_client.delete(REGISTER)
    assert error_of(response, 405) == {
        "message": 'Method "DELETE" not allowed.',
        "type": "invalid_request_error",
        "param": None,
        "code": "method_not_allowed",
    }
    assert response["Allow"] == "POST, OPTIONS"


@pytest.mark.urls("tests.core.urls_for_tests")
def test_wrong_method_on_a_plain_api_view_is_405_in_the_error_shape():
    response = Client().post("/api/v1/test/get-only")
    assert error_of(response, 405) == {
        "message": "Method Not Allowed",
        "type": "invalid_request_error",
        "param": None,
        "code": "method_not_allowed",
    }
    assert response["Allow"] == "GET"


@pytest.mark.urls("tests.core.urls_for_tests")
def test_plain_non_json_error_under_api_is_rewritten_to_the_shape():
    response = Client().get("/api/v1/test/teapot")
    assert error_of(response, 418) == {
        "message": "I'm a Teapot",
        "type": "invalid_request_error",
        "param": None,
        "code": "i_m_a_teapot",
    }


# --- 413 --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_body_over_max_request_bytes_is_413_before_the_view(anon_client, settings):
    settings.MAX_REQUEST_BYTES = 100
    body = json.dumps(registration(display_name="x" * 150))
    response = anon_client.post(REGISTER, data=body, content_type="application/json")
    assert error_of(response, 413) == {
        "message": f"The request body is {len(body)} bytes; the limit is 100 bytes.",
        "type": "invalid_request_error",
        "param": None,
        "code": "request_too_large",
    }
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_json_body_over_data_upload_max_memory_size_is_413(anon_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    body = json.dumps(registration(display_name="x" * 250))
    response = anon_client.post(REGISTER, data=body, content_type="application/json")
    assert error_of(response, 413) == {
        "message": f"The request body is {len(body)} bytes; the limit is 200 bytes.",
        "type": "invalid_request_error",
        "param": None,
        "code": "request_too_large",
    }
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_form_body_over_data_upload_max_memory_size_is_413(anon_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    form = "&".join(f"{k}={v}" for k, v in registration(display_name="x" * 250).items())
    response = anon_client.post(
        REGISTER, data=form, content_type="application/x-www-form-urlencoded"
    )
    assert error_of(response, 413)["code"] == "request_too_large"
    assert User.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_multipart_fields_over_data_upload_max_memory_size_are_413(anon_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    response = anon_client.post("/api/v1/test/orders", {"name": "x" * 300}, format="multipart")
    assert error_of(response, 413)["code"] == "request_too_large"


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_multipart_file_larger_than_the_json_limit_is_accepted(anon_client, settings):
    # Uploads are bounded by MAX_REQUEST_BYTES only: files stream to disk, not memory.
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    upload = SimpleUploadedFile("clip.bin", b"\0" * 5000)
    response = anon_client.post(
        "/api/v1/test/orders", {"name": "ok", "attachment": upload}, format="multipart"
    )
    assert response.status_code == 201
    assert response.json() == {"name": "ok"}


@pytest.mark.urls("tests.core.urls_for_tests")
def test_oversized_form_read_by_a_plain_view_is_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    response = Client().post("/api/v1/test/plain-form", {"note": "x" * 300})
    assert error_of(response, 413) == {
        "message": "The request body is too large.",
        "type": "invalid_request_error",
        "param": None,
        "code": "request_too_large",
    }


@pytest.mark.urls("tests.core.urls_for_tests")
def test_suspicious_request_in_a_plain_view_is_400_without_its_text():
    response = Client().get("/api/v1/test/suspicious")
    assert error_of(response, 400) == {
        "message": "The request is invalid.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_request",
    }
    assert LEAKED_TEXT.encode() not in response.content


# --- 429 --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_throttled_request_is_429_with_integer_retry_after(anon_client, settings):
    settings.MONTAGE_THROTTLE_RATES = {**settings.MONTAGE_THROTTLE_RATES, "auth": "2/min"}
    for _ in range(2):
        assert anon_client.post(REGISTER, {}, format="json").status_code == 400
    response = anon_client.post(REGISTER, registration(), format="json")
    error = error_of(response, 429)
    assert error["type"] == "rate_limit_error"
    assert error["code"] == "rate_limit_exceeded"
    assert error["param"] is None
    assert re.fullmatch(
        r"Request was throttled\. Expected available in \d+ seconds?\.", error["message"]
    )
    assert re.fullmatch(r"[1-9]\d*", response["Retry-After"])
    assert 1 <= int(response["Retry-After"]) <= 60
    assert User.objects.count() == 0


# --- 500 --------------------------------------------------------------------------------


def _assert_generic_500(response) -> None:
    assert error_of(response, 500) == {
        "message": GENERIC_500,
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
    assert LEAKED_TEXT.encode() not in response.content
    assert b"Traceback" not in response.content
    assert b"RuntimeError" not in response.content


@pytest.mark.urls("tests.core.urls_for_tests")
def test_crash_in_a_drf_view_is_a_generic_500_and_logged(caplog):
    client = APIClient(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="montage.errors"):
        response = client.get("/api/v1/test/explode", HTTP_X_REQUEST_ID="crash-1")
    _assert_generic_500(response)
    assert response["X-Request-ID"] == "crash-1"
    logged = [r for r in caplog.records if r.name == "montage.errors"]
    assert len(logged) == 1
    assert logged[0].exc_info[0] is RuntimeError
    assert str(logged[0].exc_info[1]) == LEAKED_TEXT


@pytest.mark.urls("tests.core.urls_for_tests")
def test_crash_in_a_plain_view_is_a_generic_500():
    response = Client(raise_request_exception=False).get("/api/v1/test/explode-plain")
    _assert_generic_500(response)


# --- Request ids ------------------------------------------------------------------------


def test_request_id_is_echoed_when_well_formed():
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="req-123.abc:9")
    assert response["X-Request-ID"] == "req-123.abc:9"


@pytest.mark.parametrize("incoming", [None, "", "has spaces", "x" * 129, "<script>"])
def test_request_id_is_generated_when_missing_or_malformed(incoming):
    extra = {} if incoming is None else {"HTTP_X_REQUEST_ID": incoming}
    first = Client().get("/healthz", **extra)["X-Request-ID"]
    second = Client().get("/healthz", **extra)["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_error_responses_carry_the_request_id():
    response = Client().get("/api/v1/no-such-thing", HTTP_X_REQUEST_ID="trace-404")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "trace-404"
