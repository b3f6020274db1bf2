"""``Idempotency-Key``: one key, one object, one response, replayed on retry."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Notification, User
from core import idempotency
from core.idempotency import purge_expired
from core.models import IdempotencyKey
from core.tasks import purge_idempotency_keys
from tests.core.test_errors import error_of, registration
from tests.factories import UserFactory
from tests.fixtures import client_for

REGISTER = "/api/v1/auth/register"
NOTES = "/api/v1/test/notes"


def register(client, key: str | None, **overrides):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(REGISTER, registration(**overrides), format="json", **headers)


# --- Replay and reuse -------------------------------------------------------------------


@pytest.mark.django_db
def test_same_key_and_body_replays_the_first_response(anon_client):
    first = register(anon_client, "key-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first

    second = register(anon_client, "key-1")
    assert second.status_code == 201
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert User.objects.count() == 1
    row = IdempotencyKey.objects.get()
    assert (row.scope, row.key, row.method, row.path, row.status_code) == (
        "ip:127.0.0.1",
        "key-1",
        "POST",
        REGISTER,
        201,
    )


@pytest.mark.django_db
def test_same_body_in_another_key_order_is_the_same_request(anon_client):
    first = anon_client.post(
        REGISTER,
        data='{"handle": "newcomer", "birth_date": "1990-05-17", '
        '"password": "a long enough passphrase 42"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    second = anon_client.post(
        REGISTER,
        data='{"password": "a long enough passphrase 42", "handle": "newcomer", '
        '"birth_date": "1990-05-17"}',
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert (first.status_code, second.status_code) == (201, 201)
    assert second["Idempotent-Replayed"] == "true"
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_a_different_body_is_422_and_creates_nothing(anon_client):
    assert register(anon_client, "key-1").status_code == 201
    response = register(anon_client, "key-1", handle="someone_else")
    assert error_of(response, 422) == {
        "message": (
            "This Idempotency-Key was already used with a different request; "
            "use a new key for a new request."
        ),
        "type": "invalid_request_error",
        "param": "Idempotency-Key",
        "code": "idempotency_key_reused",
    }
    assert list(User.objects.values_list("handle", flat=True)) == ["newcomer"]
    assert IdempotencyKey.objects.get().status_code == 201


@pytest.mark.django_db
def test_requests_without_a_key_are_not_recorded(anon_client):
    assert register(anon_client, None, handle="first_one").status_code == 201
    assert register(anon_client, None, handle="second_one").status_code == 201
    assert User.objects.count() == 2
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db
def test_keys_are_scoped_per_client_address_when_anonymous():
    a = register(APIClient(REMOTE_ADDR="198.51.100.1"), "shared", handle="from_a")
    b = register(APIClient(REMOTE_ADDR="198.51.100.2"), "shared", handle="from_b")
    assert (a.status_code, b.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in b
    assert set(User.objects.values_list("handle", flat=True)) == {"from_a", "from_b"}


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_keys_are_scoped_per_user_and_listed_headers_are_replayed(user, other_user):
    mine, theirs = client_for(user), client_for(other_user)
    first = mine.post(NOTES, {"kind": "hello"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    # The same user from another address is the same caller.
    again = mine.post(
        NOTES, {"kind": "hello"}, format="json", HTTP_IDEMPOTENCY_KEY="k1", REMOTE_ADDR="10.9.9.9"
    )
    other = theirs.post(NOTES, {"kind": "hello"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 201)
    assert again.json() == first.json()
    assert again["Location"] == first["Location"] == f"{NOTES}/{first.json()['id']}"
    assert "X-Not-Replayed" not in again
    assert "Idempotent-Replayed" not in other
    assert Notification.objects.filter(user=user).count() == 1
    assert Notification.objects.filter(user=other_user).count() == 1
    assert set(IdempotencyKey.objects.values_list("scope", flat=True)) == {
        f"user:{user.pk}",
        f"user:{other_user.pk}",
    }


# --- Expiry -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_expired_key_runs_the_request_again(anon_client):
    assert register(anon_client, "key-1").status_code == 201
    IdempotencyKey.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    old_hash = IdempotencyKey.objects.get().request_hash

    response = register(anon_client, "key-1", handle="second_life")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert set(User.objects.values_list("handle", flat=True)) == {"newcomer", "second_life"}
    row = IdempotencyKey.objects.get()
    assert row.expires_at > timezone.now()
    assert row.request_hash != old_hash
    # The renewed key now guards the second request: it replays, the first body is refused.
    assert register(anon_client, "key-1", handle="second_life")["Idempotent-Replayed"] == "true"
    assert register(anon_client, "key-1").status_code == 422


@pytest.mark.django_db
def test_key_lifetime_follows_the_ttl_setting(anon_client, settings):
    settings.IDEMPOTENCY_KEY_TTL = dt.timedelta(minutes=5)
    before = timezone.now()
    assert register(anon_client, "key-1").status_code == 201
    row = IdempotencyKey.objects.get()
    assert before + dt.timedelta(minutes=5) <= row.expires_at
    assert row.expires_at <= timezone.now() + dt.timedelta(minutes=5)


# --- Failures do not burn the key -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad", "status"),
    [({"password": "short"}, 400), ({"birth_date": "2020-01-01"}, 403), ({"handle": "!"}, 400)],
)
def test_failed_request_leaves_the_key_free_for_a_retry(anon_client, bad, status):
    assert register(anon_client, "key-1", **bad).status_code == status
    assert IdempotencyKey.objects.count() == 0
    assert User.objects.count() == 0

    retry = register(anon_client, "key-1")
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_request_failing_with_a_raised_conflict_rolls_back_its_key(anon_client):
    UserFactory(handle="taken")
    assert register(anon_client, "key-1", handle="taken").status_code == 409
    assert IdempotencyKey.objects.count() == 0
    assert register(anon_client, "key-1", handle="not_taken").status_code == 201


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_failed_request_rolls_back_what_the_view_wrote(user):
    api = client_for(user)
    before = Notification.objects.count()
    response = api.post(NOTES, {"kind": ""}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert error_of(response, 409)["code"] == "kind_missing"
    assert Notification.objects.count() == before
    assert IdempotencyKey.objects.count() == 0


# --- Invalid keys -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["k" * 256, "", "tab\there"])
def test_invalid_key_is_400_and_nothing_runs(anon_client, key):
    response = register(anon_client, key)
    assert error_of(response, 400) == {
        "message": "Idempotency-Key must be 1-255 printable characters.",
        "type": "invalid_request_error",
        "param": "Idempotency-Key",
        "code": "invalid_idempotency_key",
    }
    assert User.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db
def test_longest_valid_key_is_accepted(anon_client):
    assert register(anon_client, "k" * 255).status_code == 201
    assert IdempotencyKey.objects.get().key == "k" * 255


# --- Concurrency ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_object(monkeypatch):
    barrier = threading.Barrier(2)
    claims: list[bool] = []
    real_claim = idempotency._claim

    def slow_claim(**kwargs):
        # The winner holds its uncommitted key row a while, so the loser's INSERT must wait
        # on it: the race is forced rather than left to the scheduler.
        claimed = real_claim(**kwargs)
        claims.append(claimed)
        if claimed and len(claims) == 1:
            threading.Event().wait(0.3)
        return claimed

    monkeypatch.setattr(idempotency, "_claim", slow_claim)
    responses: list = [None, None]
    errors: list[BaseException] = []

    def post(index: int) -> None:
        try:
            client = APIClient()
            barrier.wait(timeout=10)
            responses[index] = register(client, "race-key")
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert sorted(claims) == [False, True]
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json() == responses[1].json()
    assert sorted(r.get("Idempotent-Replayed") or "" for r in responses) == ["", "true"]
    assert User.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1


def _wait_until_a_lock_is_awaited(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise TimeoutError("no request ever waited on the key row")


@pytest.mark.django_db(transaction=True)
def test_retry_waiting_on_an_expired_key_that_is_purged_meanwhile_runs_once():
    """A request blocked on an expired key row while another transaction deletes it (the purge
    task, or a concurrent retry renewing the key) must claim the key afresh, not crash."""
    assert register(APIClient(), "key-1").status_code == 201
    IdempotencyKey.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    result: dict = {}

    def retry() -> None:
        try:
            result["response"] = register(
                APIClient(raise_request_exception=False), "key-1", handle="after_purge"
            )
        finally:
            connection.close()

    with transaction.atomic():
        # Lock the row first, so the retry finds it committed and waits to lock it itself;
        # then delete it under that wait, as the purge or a renewing retry would.
        IdempotencyKey.objects.select_for_update().get()
        thread = threading.Thread(target=retry)
        thread.start()
        _wait_until_a_lock_is_awaited()
        assert purge_expired() == 1
    thread.join(timeout=30)

    response = result["response"]
    assert response.status_code == 201, response.content
    assert "Idempotent-Replayed" not in response
    assert set(User.objects.values_list("handle", flat=True)) == {"newcomer", "after_purge"}
    assert IdempotencyKey.objects.get().expires_at > timezone.now()


# --- Purge ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_purge_task_deletes_only_expired_keys():
    now = timezone.now()

    def row(key: str, expires_at) -> IdempotencyKey:
        return IdempotencyKey.objects.create(
            scope="ip:192.0.2.1",
            key=key,
            method="POST",
            path=REGISTER,
            request_hash="0" * 64,
            status_code=201,
            response_body={},
            expires_at=expires_at,
        )

    row("old", now - dt.timedelta(hours=1))
    row("just-expired", now - dt.timedelta(seconds=1))
    fresh = row("fresh", now + dt.timedelta(hours=1))

    assert purge_idempotency_keys.apply().get() == 2
    assert list(IdempotencyKey.objects.all()) == [fresh]
    assert purge_idempotency_keys() == 0
