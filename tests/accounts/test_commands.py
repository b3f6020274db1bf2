"""The create_api_key and seed_demo management commands."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.management.commands.seed_demo import years_ago
from accounts.models import ApiKey, Follow, Notification, User
from tests.accounts.helpers import accounts_state
from tests.factories import UserFactory

KEY = re.compile(r"mk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def whoami(raw: str) -> str:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.get("/api/v1/me")
    assert response.status_code == 200, response.content
    return response.json()["handle"]


# --- create_api_key ---------------------------------------------------------------------


def test_create_api_key_prints_a_key_that_authenticates(user):
    out, err = run("create_api_key", user.handle)

    raw = out.strip()
    assert KEY.fullmatch(raw)
    assert err == ""
    assert whoami(raw) == user.handle
    assert ApiKey.objects.get(user=user).name == "cli"


def test_create_api_key_accepts_an_at_sign_any_case_and_a_name(db):
    UserFactory(handle="operator")

    out, _ = run("create_api_key", "@Operator", "--name", "deploy bot")

    assert whoami(out.strip()) == "operator"
    assert ApiKey.objects.get().name == "deploy bot"


def test_create_api_key_for_an_unknown_handle_errors_without_create_user(db):
    before = accounts_state()

    with pytest.raises(CommandError, match=r"no user @ghost; pass --create-user to create it"):
        run("create_api_key", "ghost")
    assert accounts_state() == before


def test_create_api_key_with_create_user_creates_the_user(db):
    out, err = run("create_api_key", "new_bot", "--create-user")

    user = User.objects.get()
    assert (user.handle, user.display_name, user.birth_date) == ("new_bot", "new_bot", None)
    assert user.has_usable_password() is False
    assert user.is_staff is False
    assert user.age_band == "teen"
    assert err == "created user @new_bot\n"
    assert whoami(out.strip()) == "new_bot"


def test_create_api_key_with_create_user_and_a_birth_date(db):
    run("create_api_key", "dated_bot", "--create-user", "--birth-date", "1990-02-03")

    user = User.objects.get()
    assert user.birth_date == dt.date(1990, 2, 3)
    assert user.age_band == "adult"


def test_create_user_does_not_touch_an_existing_user(user):
    before = User.objects.filter(pk=user.pk).values().get()

    out, err = run("create_api_key", user.handle, "--create-user")

    assert err == ""
    assert User.objects.filter(pk=user.pk).values().get() == before
    assert whoami(out.strip()) == user.handle


@pytest.mark.parametrize("handle", ["ab", "Bad Handle!", ".dot", "dash-ed", "x" * 31])
def test_create_api_key_validates_the_handle(db, handle):
    with pytest.raises(CommandError, match="A handle is 3-30 characters"):
        run("create_api_key", handle, "--create-user")
    assert User.objects.count() == 0
    assert ApiKey.objects.count() == 0


def test_create_api_key_refuses_a_disabled_user(user):
    User.objects.filter(pk=user.pk).update(is_active=False)
    before = accounts_state()

    with pytest.raises(CommandError, match=rf"@{user.handle} is disabled"):
        run("create_api_key", user.handle)
    assert accounts_state() == before


def test_create_api_key_rejects_a_malformed_birth_date(db):
    with pytest.raises(CommandError):
        run("create_api_key", "some_bot", "--create-user", "--birth-date", "03/02/1990")
    assert User.objects.count() == 0


# --- seed_demo --------------------------------------------------------------------------


def demo_keys(out: str) -> dict[str, str]:
    return dict(re.findall(rf"@(\w+)\s+\w+\s+api key: ({KEY.pattern})", out))


def test_seed_demo_runs_twice_and_prints_keys_that_work(db):
    first, _ = run("seed_demo")
    second, _ = run("seed_demo")

    for out in (first, second):
        assert out.startswith("Demo users (password: montage-demo-password):\n")
        keys = demo_keys(out)
        assert sorted(keys) == ["ava", "ben", "staff", "teo"]
        assert {handle: whoami(raw) for handle, raw in keys.items()} == {
            handle: handle for handle in keys
        }
    assert demo_keys(first)["ava"] != demo_keys(second)["ava"]
    assert User.objects.count() == 4
    assert {(f.follower.handle, f.followee.handle) for f in Follow.objects.select_related()} == {
        ("ava", "ben"),
        ("ben", "ava"),
        ("teo", "ava"),
    }
    assert Notification.objects.count() == 3
    assert ApiKey.objects.count() == 8


def test_seed_demo_makes_an_adult_a_teen_and_a_staff_member(db):
    out, _ = run("seed_demo")

    assert re.search(r"@ava\s+adult\s+api key", out)
    assert re.search(r"@teo\s+teen\s+api key", out)
    assert re.search(r"@staff\s+staff\s+api key", out)
    staff = User.objects.get(handle="staff")
    assert staff.is_staff is True
    assert staff.is_superuser is False
    assert User.objects.get(handle="teo").is_teen is True
    assert User.objects.get(handle="ava").check_password("montage-demo-password")


def test_seed_demo_refuses_to_run_in_production(db, settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="refuses to run with MONTAGE_ENV=production"):
        run("seed_demo")
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("today", "born"),
    [
        (dt.date(2026, 3, 1), dt.date(2011, 3, 1)),
        (dt.date(2028, 2, 29), dt.date(2013, 2, 28)),
    ],
)
def test_demo_birth_dates_survive_a_leap_day(today, born):
    assert years_ago(15, today) == born
