"""Login, token refresh and authenticating requests with JWTs and API keys."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.consumers import token_from_scope
from accounts.models import User
from tests.accounts.helpers import PASSWORD, assert_error
from tests.factories import UserFactory

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/token/refresh"
ME = "/api/v1/me"
CHALLENGE = 'Bearer realm="api"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token"'

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def me_view(user: User) -> dict:
    return {
        "id": str(user.pk),
        "object": "user",
        "handle": user.handle,
        "email": user.email,
        "display_name": user.display_name,
        "bio": "",
        "avatar_url": None,
        "birth_date": user.birth_date.isoformat(),
        "age_band": "adult",
        "is_staff": False,
        "date_joined": user.date_joined.isoformat().replace("+00:00", "Z"),
    }


def login(client: APIClient, handle: str, password: str = PASSWORD):
    return client.post(TOKEN, {"handle": handle, "password": password}, format="json")


def test_login_answers_an_access_and_a_refresh_token(anon_client, user):
    response = login(anon_client, user.handle)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type"}
    assert body["token_type"] == "Bearer"
    assert AccessToken(body["access"])["sub"] == str(user.pk)
    assert RefreshToken(body["refresh"])["sub"] == str(user.pk)


def test_login_accepts_an_at_sign_and_any_case(anon_client):
    UserFactory(handle="mixed_case")

    response = login(anon_client, "@Mixed_Case")

    assert response.status_code == 200, response.content
    assert AccessToken(response.json()["access"])["sub"] == str(
        User.objects.get(handle="mixed_case").pk
    )


def test_login_with_a_wrong_password_is_refused_with_a_challenge(anon_client, user):
    response = login(anon_client, user.handle, "not the password")

    assert_error(response, 401, code="no_active_account")
    assert response["WWW-Authenticate"] == CHALLENGE
    assert "access" not in response.json()


def test_login_with_an_unknown_handle_answers_like_a_wrong_password(anon_client, user):
    unknown = login(anon_client, "nobody_here")
    wrong = login(anon_client, user.handle, "not the password")

    assert_error(unknown, 401, code="no_active_account")
    assert unknown.json() == wrong.json()


def test_login_to_a_disabled_account_is_refused(anon_client, user):
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert_error(login(anon_client, user.handle), 401, code="no_active_account")


def test_login_without_a_password_names_the_field(anon_client, user):
    response = anon_client.post(TOKEN, {"handle": user.handle}, format="json")

    assert_error(response, 400, code="required", param="password")


def test_an_access_token_authenticates_me(anon_client, user):
    access = login(anon_client, user.handle).json()["access"]

    response = bearer(access).get(ME)

    assert response.status_code == 200, response.content
    assert response.json() == me_view(user)


def test_an_api_key_authenticates_me(api, user):
    response = api.get(ME)

    assert response.status_code == 200, response.content
    assert response.json() == me_view(user)


def test_refresh_answers_a_new_access_token_that_works(anon_client, user):
    refresh = login(anon_client, user.handle).json()["refresh"]

    response = anon_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access"}
    assert bearer(body["access"]).get(ME).json()["handle"] == user.handle


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
def test_refresh_with_an_invalid_token_is_refused(anon_client, token):
    response = anon_client.post(REFRESH, {"refresh": token}, format="json")

    if token == "":
        assert_error(response, 400, code="blank", param="refresh")
        return
    error = assert_error(response, 401, code="invalid_refresh_token", param="refresh")
    assert error["message"] == "The refresh token is invalid or expired."
    assert response["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


def test_refresh_with_an_access_token_is_refused(anon_client, user):
    access = str(AccessToken.for_user(user))

    response = anon_client.post(REFRESH, {"refresh": access}, format="json")

    assert_error(response, 401, code="invalid_refresh_token", param="refresh")


def test_refresh_with_an_expired_token_is_refused(anon_client, user):
    token = RefreshToken.for_user(user)
    token.set_exp(lifetime=-dt.timedelta(seconds=1))

    response = anon_client.post(REFRESH, {"refresh": str(token)}, format="json")

    assert_error(response, 401, code="invalid_refresh_token", param="refresh")


def test_refresh_for_a_deleted_user_is_refused_not_a_crash(anon_client, user):
    refresh = str(RefreshToken.for_user(user))
    user.delete()

    response = anon_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert_error(response, 401, code="invalid_refresh_token", param="refresh")


def test_refresh_for_a_disabled_user_is_refused(anon_client, user):
    refresh = str(RefreshToken.for_user(user))
    User.objects.filter(pk=user.pk).update(is_active=False)

    response = anon_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert_error(response, 401, code="no_active_account")


def test_a_refresh_token_is_not_an_access_token(user):
    response = bearer(str(RefreshToken.for_user(user))).get(ME)

    assert_error(response, 401, code="invalid_token")


def test_an_expired_access_token_is_refused(user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-dt.timedelta(seconds=1))

    response = bearer(str(token)).get(ME)

    error = assert_error(response, 401, code="invalid_token")
    assert error["message"] == "The access token is invalid or expired."
    assert response["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


def test_an_access_token_of_a_disabled_user_is_refused(user):
    access = str(AccessToken.for_user(user))
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert_error(bearer(access).get(ME), 401, code="invalid_token")


def test_no_credentials_get_401_with_a_challenge(anon_client):
    response = anon_client.get(ME)

    assert_error(response, 401, code="not_authenticated")
    assert response["WWW-Authenticate"] == CHALLENGE


def test_a_garbage_bearer_gets_401_with_a_challenge(db):
    response = bearer("garbage").get(ME)

    assert_error(response, 401, code="invalid_token")
    assert response["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


def test_a_garbage_api_key_gets_401_with_a_challenge(db):
    response = bearer("mk_nothing").get(ME)

    error = assert_error(response, 401, code="invalid_api_key")
    assert error["message"] == "Incorrect API key provided."
    assert response["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


def test_a_non_bearer_scheme_is_not_credentials(api):
    api.credentials(HTTP_AUTHORIZATION=f"Basic {api.api_key}")

    assert_error(api.get(ME), 401, code="not_authenticated")


def test_an_api_key_of_a_disabled_user_is_refused(api, user):
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert_error(api.get(ME), 401, code="account_disabled")


def test_an_access_token_of_a_deleted_user_is_refused(user):
    access = str(AccessToken.for_user(user))
    user.delete()

    assert_error(bearer(access).get(ME), 401, code="invalid_token")


@pytest.mark.parametrize(
    ("scope", "token"),
    [
        ({"headers": [(b"authorization", b"Bearer mk_abc_def")]}, "mk_abc_def"),
        ({"headers": [], "query_string": b"token=jwt.value.here"}, "jwt.value.here"),
        (
            {"headers": [(b"authorization", b"Bearer from-header")], "query_string": b"token=q"},
            "from-header",
        ),
        ({"headers": [(b"authorization", b"Basic abc")]}, None),
        ({}, None),
    ],
)
def test_a_websocket_handshake_carries_its_token_in_a_header_or_the_query(scope, token):
    assert token_from_scope(scope) == token
