"""POST /api/v1/auth/register."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from accounts.models import User
from tests.accounts.helpers import accounts_state, assert_error, years_ago
from tests.factories import UserFactory

URL = "/api/v1/auth/register"
STRONG = "velvet-otter-harbour-91"

pytestmark = pytest.mark.django_db


def payload(**overrides) -> dict:
    body = {
        "handle": "new_person",
        "password": STRONG,
        "birth_date": "1990-05-17",
        "email": "new.person@example.test",
        "display_name": "New Person",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def test_register_creates_an_adult_and_answers_the_owner_view(anon_client):
    response = anon_client.post(URL, payload(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    user = User.objects.get()
    assert body == {
        "id": str(user.pk),
        "object": "user",
        "handle": "new_person",
        "email": "new.person@example.test",
        "display_name": "New Person",
        "bio": "",
        "avatar_url": None,
        "birth_date": "1990-05-17",
        "age_band": "adult",
        "is_staff": False,
        "date_joined": body["date_joined"],
    }
    assert uuid.UUID(body["id"]).version == 7
    assert user.handle == "new_person"
    assert user.birth_date == dt.date(1990, 5, 17)
    assert user.check_password(STRONG)
    assert user.password != STRONG
    assert user.is_staff is False
    assert user.is_active is True


def test_register_a_fifteen_year_old_is_a_teen(anon_client):
    response = anon_client.post(URL, payload(birth_date=years_ago(15).isoformat()), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["age_band"] == "teen"
    assert User.objects.get().is_teen is True


def test_register_on_the_eighteenth_birthday_is_an_adult(anon_client):
    response = anon_client.post(URL, payload(birth_date=years_ago(18).isoformat()), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["age_band"] == "adult"


def test_register_the_day_before_the_eighteenth_birthday_is_a_teen(anon_client):
    response = anon_client.post(
        URL, payload(birth_date=years_ago(18, days=1).isoformat()), format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["age_band"] == "teen"


def test_register_normalises_the_handle_and_defaults_the_display_name(anon_client):
    response = anon_client.post(
        URL, payload(handle="  @New_Person ", display_name=None, email=None), format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["handle"] == "new_person"
    assert body["display_name"] == "new_person"
    assert body["email"] is None


def test_register_with_a_blank_email_stores_no_email(anon_client):
    response = anon_client.post(URL, payload(email=""), format="json")

    assert response.status_code == 201, response.content
    assert User.objects.get().email is None


def test_register_on_the_thirteenth_birthday_is_allowed(anon_client):
    response = anon_client.post(URL, payload(birth_date=years_ago(13).isoformat()), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["age_band"] == "teen"


def test_register_under_the_minimum_age_is_forbidden_and_creates_nothing(anon_client):
    response = anon_client.post(
        URL, payload(birth_date=years_ago(13, days=1).isoformat()), format="json"
    )

    error = assert_error(response, 403, code="under_minimum_age", param="birth_date")
    assert error["message"] == "You must be at least 13 to use Montage."
    assert User.objects.count() == 0


def test_register_with_a_future_birth_date_is_invalid(anon_client):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)

    response = anon_client.post(URL, payload(birth_date=tomorrow.isoformat()), format="json")

    assert_error(response, 400, code="invalid_birth_date", param="birth_date")
    assert User.objects.count() == 0


def test_register_with_a_malformed_birth_date_is_invalid(anon_client):
    response = anon_client.post(URL, payload(birth_date="17/05/1990"), format="json")

    assert_error(response, 400, code="invalid", param="birth_date")
    assert User.objects.count() == 0


@pytest.mark.parametrize("missing", ["handle", "password", "birth_date"])
def test_register_without_a_required_field_names_it(anon_client, missing):
    body = payload()
    del body[missing]

    response = anon_client.post(URL, body, format="json")

    error = assert_error(response, 400, code="required", param=missing)
    assert error["message"] == f"{missing}: This field is required."
    assert User.objects.count() == 0


def test_register_with_an_empty_body_names_the_first_missing_field(anon_client):
    response = anon_client.post(URL, {}, format="json")

    error = assert_error(response, 400, code="required", param="handle")
    assert error["message"] == (
        "handle: This field is required.; password: This field is required.; "
        "birth_date: This field is required."
    )


@pytest.mark.parametrize(
    "handle",
    ["ab", "has space", ".leading_dot", "trailing_dot.", "dash-ed", "émile", "x" * 31],
)
def test_register_with_an_invalid_handle_is_refused(anon_client, handle):
    response = anon_client.post(URL, payload(handle=handle), format="json")

    assert_error(response, 400, code="invalid_handle", param="handle")
    assert User.objects.count() == 0


def test_register_with_a_handle_longer_than_the_field_is_refused(anon_client):
    response = anon_client.post(URL, payload(handle="x" * 32), format="json")

    assert_error(response, 400, code="max_length", param="handle")
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short1!", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
        ("804219937512", "This password is entirely numeric."),
        ("new_person", "The password is too similar to the handle."),
        ("Stargazer Quinn", "The password is too similar to the display name."),
    ],
)
def test_register_with_a_weak_password_is_refused(anon_client, password, why):
    body = payload(password=password, display_name="Stargazer Quinn")

    response = anon_client.post(URL, body, format="json")

    error = assert_error(response, 400, code="weak_password", param="password")
    assert why in error["message"]
    assert User.objects.count() == 0


def test_register_a_taken_handle_conflicts_whatever_its_case(anon_client):
    UserFactory(handle="taken_name", email="first@example.test")
    before = accounts_state()

    response = anon_client.post(
        URL, payload(handle="Taken_Name", email="second@example.test"), format="json"
    )

    assert_error(response, 409, code="handle_taken", param="handle")
    assert accounts_state() == before


def test_register_a_taken_email_conflicts_whatever_its_case(anon_client):
    UserFactory(handle="first_person", email="someone@example.test")
    before = accounts_state()

    response = anon_client.post(URL, payload(email="SomeOne@EXAMPLE.test"), format="json")

    assert_error(response, 409, code="email_taken", param="email")
    assert accounts_state() == before


def test_register_with_an_invalid_email_is_refused(anon_client):
    response = anon_client.post(URL, payload(email="not-an-email"), format="json")

    assert_error(response, 400, code="invalid", param="email")
    assert User.objects.count() == 0


def test_register_ignores_credentials_and_staff_fields(anon_client, api):
    response = api.post(URL, payload(is_staff=True, is_superuser=True), format="json")

    assert response.status_code == 201, response.content
    created = User.objects.get(handle="new_person")
    assert created.is_staff is False
    assert created.is_superuser is False


def test_register_replays_the_same_idempotency_key_without_a_second_user(anon_client):
    headers = {"HTTP_IDEMPOTENCY_KEY": "signup-1"}
    first = anon_client.post(URL, payload(), format="json", **headers)
    second = anon_client.post(URL, payload(), format="json", **headers)

    assert first.status_code == 201, first.content
    assert second.status_code == 201, second.content
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert User.objects.count() == 1
