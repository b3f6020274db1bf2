"""Follows, blocks and profile visibility between people."""

from __future__ import annotations

import pytest

from accounts.models import Block, Follow, Notification, User
from accounts.services import user_block, user_follow
from core.errors import NotFound
from tests.accounts.helpers import accounts_state, assert_error, handles, page
from tests.factories import UserFactory
from tests.fixtures import client_for

pytestmark = pytest.mark.django_db


def follow_url(user: User) -> str:
    return f"/api/v1/users/{user.handle}/follow"


def block_url(user: User) -> str:
    return f"/api/v1/users/{user.handle}/block"


def profile_url(user: User) -> str:
    return f"/api/v1/users/{user.handle}"


def followers_url(user: User) -> str:
    return f"/api/v1/users/{user.handle}/followers"


def following_url(user: User) -> str:
    return f"/api/v1/users/{user.handle}/following"


def follows() -> set[tuple[str, str]]:
    return {(f.follower.handle, f.followee.handle) for f in Follow.objects.select_related()}


def assert_looks_missing(response) -> None:
    """Exactly what a handle nobody holds answers."""
    error = assert_error(response, 404, code="user_not_found")
    assert error["message"] == "No such user."


# --- Following --------------------------------------------------------------------------


def test_follow_creates_the_edge_and_notifies_the_followee(api, user, other_user):
    response = api.post(follow_url(other_user))

    assert response.status_code == 204
    assert response.content == b""
    assert follows() == {(user.handle, other_user.handle)}
    notification = Notification.objects.get()
    assert notification.user == other_user
    assert notification.kind == "follow"
    assert notification.actor == user
    assert notification.data == {"handle": user.handle}
    assert notification.read_at is None


def test_follow_pushes_the_notification_only_after_commit(
    api, other_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        api.post(follow_url(other_user))

    assert len(callbacks) == 1


def test_following_twice_keeps_one_edge_and_one_notification(api, user, other_user):
    api.post(follow_url(other_user))

    response = api.post(follow_url(other_user))

    assert response.status_code == 204
    assert Follow.objects.count() == 1
    assert Notification.objects.count() == 1


def test_follow_accepts_an_at_sign_and_any_case(api, user):
    target = UserFactory(handle="case_target")

    response = api.post("/api/v1/users/@Case_Target/follow")

    assert response.status_code == 204
    assert follows() == {(user.handle, target.handle)}


def test_unfollow_removes_the_edge(api, user, other_user):
    api.post(follow_url(other_user))

    response = api.delete(follow_url(other_user))

    assert response.status_code == 204
    assert follows() == set()


def test_unfollow_without_a_follow_is_a_no_op(api, other_user):
    before = accounts_state()

    assert api.delete(follow_url(other_user)).status_code == 204
    assert accounts_state() == before


def test_following_yourself_is_refused(api, user):
    before = accounts_state()

    response = api.post(follow_url(user))

    error = assert_error(response, 400, code="cannot_follow_self")
    assert error["message"] == "You cannot follow yourself."
    assert accounts_state() == before


def test_following_an_unknown_handle_is_404(api):
    before = accounts_state()

    assert_looks_missing(api.post("/api/v1/users/nobody_here/follow"))
    assert accounts_state() == before


def test_following_a_disabled_account_is_404(api, other_user):
    User.objects.filter(pk=other_user.pk).update(is_active=False)
    before = accounts_state()

    assert_looks_missing(api.post(follow_url(other_user)))
    assert accounts_state() == before


def test_following_needs_credentials(anon_client, other_user):
    before = accounts_state()

    assert_error(anon_client.post(follow_url(other_user)), 401, code="not_authenticated")
    assert accounts_state() == before


# --- Profiles and lists -----------------------------------------------------------------


def test_profile_shows_counts_and_the_relationship_to_the_viewer(api, user, other_user):
    third = UserFactory()
    user_follow(follower=user, followee=other_user)
    user_follow(follower=third, followee=other_user)
    user_follow(follower=other_user, followee=user)
    disabled = UserFactory()
    user_follow(follower=disabled, followee=other_user)
    User.objects.filter(pk=disabled.pk).update(is_active=False)

    response = api.get(profile_url(other_user))

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": str(other_user.pk),
        "object": "user",
        "handle": other_user.handle,
        "display_name": other_user.display_name,
        "bio": "",
        "avatar_url": None,
        "date_joined": response.json()["date_joined"],
        "viewer_follows": True,
        "follows_viewer": True,
        "follower_count": 2,
        "following_count": 1,
    }


def test_profile_of_someone_unconnected(api, other_user):
    body = api.get(profile_url(other_user)).json()

    assert (body["viewer_follows"], body["follows_viewer"]) == (False, False)
    assert (body["follower_count"], body["following_count"]) == (0, 0)


def test_profile_of_an_unknown_handle_is_404(api):
    assert_looks_missing(api.get("/api/v1/users/nobody_here"))


def test_followers_are_paginated_newest_first_with_a_cursor(api, user, other_user):
    people = [UserFactory() for _ in range(3)]
    for person in people:
        user_follow(follower=person, followee=other_user)

    first = page(api, followers_url(other_user), limit=2)
    second = page(api, followers_url(other_user), limit=2, cursor=first["next_cursor"])

    assert handles(first) == [people[2].handle, people[1].handle]
    assert first["has_more"] is True
    assert handles(second) == [people[0].handle]
    assert second["has_more"] is False
    assert second["next_cursor"] is None
    row = second["data"][0]
    assert set(row) == {"user", "since"}
    assert row["user"]["object"] == "user"
    assert row["user"]["id"] == str(people[0].pk)
    assert "email" not in row["user"]
    assert "birth_date" not in row["user"]


def test_follower_rows_say_whether_the_viewer_and_they_follow_each_other(api, user, other_user):
    mutual, fan = UserFactory(handle="mutual_one"), UserFactory(handle="fan_one")
    for person in (mutual, fan):
        user_follow(follower=person, followee=other_user)
    user_follow(follower=user, followee=mutual)
    user_follow(follower=mutual, followee=user)

    body = page(api, followers_url(other_user))

    relationship = {
        row["user"]["handle"]: (row["user"]["viewer_follows"], row["user"]["follows_viewer"])
        for row in body["data"]
    }
    assert relationship == {"mutual_one": (True, True), "fan_one": (False, False)}


def test_following_lists_whom_the_user_follows(api, user, other_user):
    a, b = UserFactory(), UserFactory()
    user_follow(follower=other_user, followee=a)
    user_follow(follower=other_user, followee=b)
    user_follow(follower=a, followee=other_user)

    body = page(api, following_url(other_user))

    assert handles(body) == [b.handle, a.handle]
    assert body["has_more"] is False


def test_an_invalid_cursor_is_refused(api, other_user):
    response = api.get(followers_url(other_user), {"cursor": "not-a-cursor"})

    assert_error(response, 400, code="invalid_cursor", param="cursor")


def test_lists_of_an_unknown_handle_are_404(api):
    assert_looks_missing(api.get("/api/v1/users/nobody_here/followers"))
    assert_looks_missing(api.get("/api/v1/users/nobody_here/following"))


# --- Blocking ---------------------------------------------------------------------------


def test_block_severs_follows_both_ways(api, user, other_user):
    bystander = UserFactory()
    user_follow(follower=user, followee=other_user)
    user_follow(follower=other_user, followee=user)
    user_follow(follower=bystander, followee=other_user)

    response = api.post(block_url(other_user))

    assert response.status_code == 204
    assert follows() == {(bystander.handle, other_user.handle)}
    assert Block.objects.filter(blocker=user, blocked=other_user).count() == 1


def test_blocking_twice_keeps_one_block(api, user, other_user):
    api.post(block_url(other_user))

    assert api.post(block_url(other_user)).status_code == 204
    assert Block.objects.count() == 1


def test_blocking_yourself_is_refused(api, user):
    before = accounts_state()

    assert_error(api.post(block_url(user)), 400, code="cannot_block_self")
    assert accounts_state() == before


def test_blocking_an_unknown_handle_is_404(api):
    before = accounts_state()

    assert_looks_missing(api.post("/api/v1/users/nobody_here/block"))
    assert accounts_state() == before


def test_you_can_block_someone_who_already_blocked_you(api, user, other_user):
    user_block(blocker=other_user, blocked=user)

    assert api.post(block_url(other_user)).status_code == 204
    assert Block.objects.count() == 2


def test_the_blocked_cannot_follow_the_blocker_and_it_looks_like_no_such_user(user, other_user):
    user_block(blocker=user, blocked=other_user)
    blocked = client_for(other_user)
    before = accounts_state()

    response = blocked.post(follow_url(user))

    assert_looks_missing(response)
    assert response.json() == blocked.post("/api/v1/users/nobody_here/follow").json()
    assert accounts_state() == before


def test_the_blocker_cannot_follow_the_blocked(api, user, other_user):
    user_block(blocker=user, blocked=other_user)
    before = accounts_state()

    assert_looks_missing(api.post(follow_url(other_user)))
    assert accounts_state() == before


def test_the_follow_service_refuses_across_a_block_too(user, other_user):
    user_block(blocker=user, blocked=other_user)

    with pytest.raises(NotFound):
        user_follow(follower=other_user, followee=user)
    assert Follow.objects.count() == 0
    assert Notification.objects.count() == 0


def test_neither_side_of_a_block_can_see_the_other(api, user, other_user):
    user_block(blocker=user, blocked=other_user)
    blocked = client_for(other_user)

    assert_looks_missing(blocked.get(profile_url(user)))
    assert_looks_missing(blocked.get(followers_url(user)))
    assert_looks_missing(blocked.get(following_url(user)))
    assert_looks_missing(api.get(profile_url(other_user)))
    assert_looks_missing(api.get(followers_url(other_user)))
    assert_looks_missing(api.get(following_url(other_user)))


def test_a_block_does_not_hide_either_side_from_everyone_else(user, other_user):
    user_block(blocker=user, blocked=other_user)
    bystander = client_for(UserFactory())

    assert bystander.get(profile_url(user)).status_code == 200
    assert bystander.get(profile_url(other_user)).status_code == 200


def test_blocked_people_are_left_out_of_lists_the_viewer_sees(api, user, other_user):
    celebrity = UserFactory(handle="celebrity")
    fan = UserFactory(handle="a_fan")
    for person in (user, other_user, fan):
        user_follow(follower=person, followee=celebrity)
        user_follow(follower=celebrity, followee=person)
    user_block(blocker=other_user, blocked=user)
    bystander = client_for(UserFactory())

    # user was blocked by other_user: other_user vanishes from what user sees...
    assert handles(page(api, followers_url(celebrity))) == [fan.handle, user.handle]
    assert handles(page(api, following_url(celebrity))) == [fan.handle, user.handle]
    # ...and user vanishes from what the blocker sees...
    blocker = client_for(other_user)
    assert handles(page(blocker, followers_url(celebrity))) == [fan.handle, other_user.handle]
    assert handles(page(blocker, following_url(celebrity))) == [fan.handle, other_user.handle]
    # ...while everyone else still sees both.
    assert handles(page(bystander, followers_url(celebrity))) == [
        fan.handle,
        other_user.handle,
        user.handle,
    ]


def test_unblock_restores_visibility_but_not_the_follows(api, user, other_user):
    user_follow(follower=user, followee=other_user)
    api.post(block_url(other_user))
    assert_looks_missing(api.get(profile_url(other_user)))

    response = api.delete(block_url(other_user))

    assert response.status_code == 204
    assert Block.objects.count() == 0
    assert api.get(profile_url(other_user)).status_code == 200
    assert client_for(other_user).get(profile_url(user)).status_code == 200
    assert follows() == set()
    assert api.post(follow_url(other_user)).status_code == 204


def test_unblock_removes_only_your_own_block(api, user, other_user):
    user_block(blocker=other_user, blocked=user)
    before = accounts_state()

    assert api.delete(block_url(other_user)).status_code == 204
    assert accounts_state() == before
    assert_looks_missing(api.get(profile_url(other_user)))


def test_my_blocks_lists_whom_i_blocked(api, user, other_user):
    third = UserFactory()
    api.post(block_url(other_user))
    api.post(block_url(third))
    user_block(blocker=UserFactory(), blocked=user)

    first = page(api, "/api/v1/me/blocks", limit=1)
    second = page(api, "/api/v1/me/blocks", limit=1, cursor=first["next_cursor"])

    assert handles(first) == [third.handle]
    assert first["has_more"] is True
    assert handles(second) == [other_user.handle]
    assert second["has_more"] is False
    assert set(second["data"][0]) == {"user", "since"}


def test_my_blocks_is_empty_without_blocks(api):
    assert page(api, "/api/v1/me/blocks") == {
        "object": "list",
        "data": [],
        "has_more": False,
        "next_cursor": None,
    }
