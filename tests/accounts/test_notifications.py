"""GET /api/v1/notifications and POST /api/v1/notifications/read."""

from __future__ import annotations

import uuid

import pytest

from accounts.models import Notification
from accounts.services import notification_create, user_block
from tests.accounts.helpers import accounts_state, assert_error, page
from tests.factories import UserFactory

LIST = "/api/v1/notifications"
READ = "/api/v1/notifications/read"

pytestmark = pytest.mark.django_db


def notify(user, n: int, *, actor=None, kind: str = "test") -> list[Notification]:
    return [notification_create(user=user, kind=kind, actor=actor, data={"n": i}) for i in range(n)]


def ids(body: dict) -> list[str]:
    return [row["id"] for row in body["data"]]


def unread(user) -> set[str]:
    return {str(pk) for pk in user.notifications.filter(read_at=None).values_list("pk", flat=True)}


def test_notifications_are_paginated_newest_first(api, user, other_user):
    mine = notify(user, 3, actor=other_user)
    notify(other_user, 2)

    first = page(api, LIST, limit=2)
    second = page(api, LIST, limit=2, cursor=first["next_cursor"])

    assert ids(first) == [str(mine[2].pk), str(mine[1].pk)]
    assert first["has_more"] is True
    assert ids(second) == [str(mine[0].pk)]
    assert second["has_more"] is False
    assert second["next_cursor"] is None
    assert second["data"][0] == {
        "id": str(mine[0].pk),
        "object": "notification",
        "kind": "test",
        "actor": other_user.handle,
        "data": {"n": 0},
        "created_at": second["data"][0]["created_at"],
        "read_at": None,
    }


def test_notifications_can_be_limited_to_unread(api, user):
    first, second = notify(user, 2)
    Notification.objects.filter(pk=first.pk).update(read_at=first.created_at)

    body = page(api, LIST, unread="true")

    assert ids(body) == [str(second.pk)]


def test_a_notification_without_an_actor_is_listed(api, user):
    (system,) = notify(user, 1)

    body = page(api, LIST)

    assert ids(body) == [str(system.pk)]
    assert body["data"][0]["actor"] is None


def test_notifications_from_either_side_of_a_block_are_hidden(api, user, other_user):
    blocker, friend = UserFactory(), UserFactory()
    (from_other,) = notify(user, 1, actor=other_user)
    (from_blocker,) = notify(user, 1, actor=blocker)
    (from_friend,) = notify(user, 1, actor=friend)
    user_block(blocker=user, blocked=other_user)
    user_block(blocker=blocker, blocked=user)

    assert ids(page(api, LIST)) == [str(from_friend.pk)]
    assert Notification.objects.filter(pk__in=[from_other.pk, from_blocker.pk]).count() == 2


def test_mark_read_with_ids_marks_only_those_of_ones_own(api, user, other_user):
    a, b, c = notify(user, 3)
    (theirs,) = notify(other_user, 1)

    response = api.post(READ, {"ids": [str(a.pk), str(c.pk), str(theirs.pk)]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {"marked_read": 2}
    assert unread(user) == {str(b.pk)}
    assert unread(other_user) == {str(theirs.pk)}


def test_mark_read_without_ids_marks_all_of_ones_own(api, user, other_user):
    notify(user, 3)
    (theirs,) = notify(other_user, 1)

    response = api.post(READ, {}, format="json")

    assert response.json() == {"marked_read": 3}
    assert unread(user) == set()
    assert unread(other_user) == {str(theirs.pk)}


def test_mark_read_keeps_the_first_read_time(api, user):
    (note,) = notify(user, 1)
    api.post(READ, {}, format="json")
    first = Notification.objects.get(pk=note.pk).read_at

    response = api.post(READ, {"ids": [str(note.pk)]}, format="json")

    assert response.json() == {"marked_read": 0}
    assert Notification.objects.get(pk=note.pk).read_at == first


def test_mark_read_with_an_empty_list_marks_nothing(api, user):
    notify(user, 2)
    before = accounts_state()

    response = api.post(READ, {"ids": []}, format="json")

    assert response.json() == {"marked_read": 0}
    assert accounts_state() == before


def test_mark_read_of_another_users_notification_changes_nothing(api, other_user):
    (theirs,) = notify(other_user, 1)
    before = accounts_state()

    response = api.post(READ, {"ids": [str(theirs.pk)]}, format="json")

    assert response.json() == {"marked_read": 0}
    assert accounts_state() == before


def test_mark_read_with_a_malformed_id_is_refused(api, user):
    notify(user, 1)
    before = accounts_state()

    response = api.post(READ, {"ids": [str(uuid.uuid4()), "nope"]}, format="json")

    assert_error(response, 400, code="invalid", param="ids[1]")
    assert accounts_state() == before


def test_notifications_need_credentials(anon_client, user):
    notify(user, 1)
    before = accounts_state()

    assert_error(anon_client.get(LIST), 401, code="not_authenticated")
    assert_error(anon_client.post(READ, {}, format="json"), 401, code="not_authenticated")
    assert accounts_state() == before
