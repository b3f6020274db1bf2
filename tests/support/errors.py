"""The one error shape, asserted exactly (every API test uses this)."""

from __future__ import annotations

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


def assert_error(response, status: int, *, code: str, param: str | None = None) -> dict:
    """The response is exactly the one error shape, with this status, code and param."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == ERROR_TYPES[status]
    assert error["code"] == code
    assert error["param"] == param
    assert isinstance(error["message"], str)
    assert error["message"]
    return error
