"""Lists cost a fixed number of queries, however many rows a page holds."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Follow, Notification
from accounts.services import user_block
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# API key lookup, the target user, the block check between viewer and target, the page.
FOLLOW_LIST_QUERIES = 4
# API key lookup, the page.
OWN_LIST_QUERIES = 2


def queries_for(client, url: str) -> tuple[list[str], dict]:
    client.get("/api/v1/me")  # records the key's last use, so it is not counted below
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"limit": 100})
    assert response.status_code == 200, response.content
    return [query["sql"] for query in captured.captured_queries], response.json()


def add_edges(target, n: int, *, direction: str, viewer) -> None:
    people = UserFactory.create_batch(n)
    if direction == "followers":
        Follow.objects.bulk_create(Follow(follower=p, followee=target) for p in people)
    else:
        Follow.objects.bulk_create(Follow(follower=target, followee=p) for p in people)
    # One of them blocked the viewer: filtered in the page's own query, not per row.
    user_block(blocker=people[0], blocked=viewer)


@pytest.mark.parametrize("direction", ["followers", "following"])
def test_follow_lists_use_the_same_queries_for_3_and_30_rows(
    api, user, django_assert_num_queries, direction
):
    small, large = UserFactory(), UserFactory()
    add_edges(small, 3, direction=direction, viewer=user)
    add_edges(large, 30, direction=direction, viewer=user)

    few, few_body = queries_for(api, f"/api/v1/users/{small.handle}/{direction}")
    many, many_body = queries_for(api, f"/api/v1/users/{large.handle}/{direction}")

    assert (len(few_body["data"]), len(many_body["data"])) == (2, 29)
    assert len(few) == len(many) == FOLLOW_LIST_QUERIES
    with django_assert_num_queries(FOLLOW_LIST_QUERIES):
        api.get(f"/api/v1/users/{large.handle}/{direction}", {"limit": 100})


def test_profile_counts_cost_one_query(api, other_user):
    for direction in ("followers", "following"):
        add_edges(other_user, 30, direction=direction, viewer=UserFactory())

    queries, body = queries_for(api, f"/api/v1/users/{other_user.handle}")

    # API key, target, block check, the profile with its counts and relationship.
    assert len(queries) == 4
    assert (body["follower_count"], body["following_count"]) == (30, 30)


def test_notifications_use_the_same_queries_for_3_and_30_rows(api, user):
    actors = UserFactory.create_batch(30)
    Notification.objects.bulk_create(
        Notification(user=user, kind="test", actor=actor, data={}) for actor in actors[:3]
    )
    few, few_body = queries_for(api, "/api/v1/notifications")
    Notification.objects.bulk_create(
        Notification(user=user, kind="test", actor=actor, data={}) for actor in actors[3:]
    )

    many, many_body = queries_for(api, "/api/v1/notifications")

    assert (len(few_body["data"]), len(many_body["data"])) == (3, 30)
    assert len(few) == len(many) == OWN_LIST_QUERIES


def test_my_blocks_use_the_same_queries_for_3_and_30_rows(api, user):
    people = UserFactory.create_batch(30)
    for person in people[:3]:
        user_block(blocker=user, blocked=person)
    few, few_body = queries_for(api, "/api/v1/me/blocks")
    for person in people[3:]:
        user_block(blocker=user, blocked=person)

    many, many_body = queries_for(api, "/api/v1/me/blocks")

    assert (len(few_body["data"]), len(many_body["data"])) == (3, 30)
    assert len(few) == len(many) == OWN_LIST_QUERIES
