"""API keys: created once-visible, used as Bearer tokens, stored hashed, revocable."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey
from tests.accounts.helpers import accounts_state, assert_error
from tests.fixtures import client_for

KEYS = "/api/v1/api-keys"
ME = "/api/v1/me"
INVALID_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token"'

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def create_key(client, name: str = "ci") -> dict:
    response = client.post(KEYS, {"name": name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_shows_the_raw_key_once(api, user):
    body = create_key(api, "laptop")

    key = ApiKey.objects.get(pk=body["id"])
    assert body == {
        "id": str(key.pk),
        "object": "api_key",
        "name": "laptop",
        "redacted": f"mk_{key.prefix}_…",
        "created_at": body["created_at"],
        "last_used_at": None,
        "revoked_at": None,
        "key": body["key"],
    }
    assert re.fullmatch(rf"mk_{key.prefix}_[A-Za-z0-9_-]{{43}}", body["key"])
    assert re.fullmatch(r"[0-9a-f]{12}", key.prefix)
    assert key.user_id == user.pk


def test_create_without_a_name_gives_an_empty_name(api):
    response = api.post(KEYS, {}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["name"] == ""


def test_create_with_a_too_long_name_is_refused(api):
    before = accounts_state()

    response = api.post(KEYS, {"name": "x" * 101}, format="json")

    assert_error(response, 400, code="max_length", param="name")
    assert accounts_state() == before


def test_list_never_shows_a_raw_key(api, user):
    created = create_key(api)

    response = api.get(KEYS)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "list"
    assert body["has_more"] is False
    assert len(body["data"]) == 2  # the fixture's key and the new one, newest first
    assert body["data"][0] == {k: v for k, v in created.items() if k != "key"}
    assert all("key" not in row for row in body["data"])
    assert all(row["redacted"].startswith("mk_") for row in body["data"])
    secret = created["key"].split("_", 2)[2]
    assert secret not in response.content.decode()
    assert api.api_key.split("_", 2)[2] not in response.content.decode()


def test_list_shows_only_ones_own_keys(api, other_user):
    client_for(other_user)

    body = api.get(KEYS).json()

    assert [row["id"] for row in body["data"]] == [
        str(key.pk) for key in ApiKey.objects.filter(user=api.user).order_by("-id")
    ]


def test_the_key_is_stored_only_as_a_sha256(api):
    body = create_key(api)
    raw = body["key"]
    secret = raw.split("_", 2)[2]

    row = ApiKey.objects.filter(pk=body["id"]).values().get()

    assert row["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    stored = json.dumps(row, default=str)
    assert raw not in stored
    assert secret not in stored


def test_a_new_key_authenticates_as_its_owner(api, user):
    raw = create_key(api)["key"]

    response = bearer(raw).get(ME)

    assert response.status_code == 200, response.content
    assert response.json()["handle"] == user.handle


def test_using_a_key_records_when_it_was_last_used(api):
    body = create_key(api)
    assert ApiKey.objects.get(pk=body["id"]).last_used_at is None

    bearer(body["key"]).get(ME)

    assert ApiKey.objects.get(pk=body["id"]).last_used_at is not None


def test_a_revoked_key_is_refused_with_api_key_revoked(api):
    body = create_key(api)
    raw = body["key"]
    assert bearer(raw).get(ME).status_code == 200

    response = api.delete(f"{KEYS}/{body['id']}")

    assert response.status_code == 200, response.content
    revoked = response.json()
    assert revoked["id"] == body["id"]
    assert revoked["revoked_at"] is not None
    assert "key" not in revoked
    assert ApiKey.objects.get(pk=body["id"]).revoked_at is not None
    refused = bearer(raw).get(ME)
    error = assert_error(refused, 401, code="api_key_revoked")
    assert error["message"] == "This API key has been revoked."
    assert refused["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


def test_revoking_twice_keeps_the_first_revocation_time(api):
    body = create_key(api)
    first = api.delete(f"{KEYS}/{body['id']}").json()["revoked_at"]

    second = api.delete(f"{KEYS}/{body['id']}")

    assert second.status_code == 200
    assert second.json()["revoked_at"] == first


def test_a_key_can_revoke_itself(api):
    key = ApiKey.objects.get(user=api.user)

    response = api.delete(f"{KEYS}/{key.pk}")

    assert response.status_code == 200, response.content
    assert_error(api.get(ME), 401, code="api_key_revoked")


def test_revoking_another_users_key_is_404_and_changes_nothing(api, other_user):
    theirs = client_for(other_user)
    their_key = ApiKey.objects.get(user=other_user)
    before = accounts_state()

    response = api.delete(f"{KEYS}/{their_key.pk}")

    assert_error(response, 404, code="api_key_not_found")
    assert accounts_state() == before
    assert theirs.get(ME).status_code == 200


def test_revoking_an_unknown_key_is_404(api):
    assert_error(api.delete(f"{KEYS}/{uuid.uuid4()}"), 404, code="api_key_not_found")


def test_a_right_prefix_with_a_wrong_secret_is_refused(api):
    before = accounts_state()
    prefix = "_".join(api.api_key.split("_", 2)[:2])
    forged = f"{prefix}_{'A' * 43}"

    response = bearer(forged).get(ME)

    error = assert_error(response, 401, code="invalid_api_key")
    assert error["message"] == "Incorrect API key provided."
    assert accounts_state() == before


@pytest.mark.parametrize("token", ["mk_", "mk_abc", "mk__secret", "mk_000000000000_secret"])
def test_malformed_or_unknown_keys_are_refused(db, token):
    assert_error(bearer(token).get(ME), 401, code="invalid_api_key")


def test_api_keys_need_credentials(anon_client, user):
    before = accounts_state()

    response = anon_client.post(KEYS, {"name": "x"}, format="json")

    assert_error(response, 401, code="not_authenticated")
    assert accounts_state() == before
