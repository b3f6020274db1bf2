"""Visibility and block rules on every post and feed endpoint: one table, every viewer, every
clip state. The rule itself is generation's; this pins that every feed read applies it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.services import user_block, user_follow
from generation.models import Clip, ClipAudience
from tests.factories import TeenFactory, UserFactory
from tests.feed.helpers import client_for, publish

pytestmark = pytest.mark.django_db

VIEWERS = ["owner", "follower", "stranger", "blocked", "blocker", "teen", "staff"]
STATES = {
    # state -> (clip changes after publication, viewers who may see it)
    "public": ({}, set(VIEWERS) - {"blocked", "blocker"}),
    "followers": ({"audience": ClipAudience.FOLLOWERS}, {"owner", "follower", "teen", "staff"}),
    "only_me": ({"audience": ClipAudience.ONLY_ME}, {"owner", "staff"}),
    "held": ({"held_at": timezone.now()}, {"owner", "staff"}),
    "age_restricted": (
        {"age_restricted": True},
        {"owner", "follower", "stranger", "staff"},
    ),
    "removed": ({"removed_at": timezone.now()}, set()),
}


@pytest.fixture
def people():
    owner = UserFactory(handle="maker")
    follower, stranger, blocked, blocker, staff = (UserFactory() for _ in range(5))
    staff.is_staff = True
    staff.save()
    teen = TeenFactory()
    user_follow(follower=follower, followee=owner)
    user_follow(follower=teen, followee=owner)
    user_follow(follower=staff, followee=owner)
    user_block(blocker=owner, blocked=blocked)
    user_block(blocker=blocker, blocked=owner)
    return {
        "owner": owner,
        "follower": follower,
        "stranger": stranger,
        "blocked": blocked,
        "blocker": blocker,
        "teen": teen,
        "staff": staff,
    }


@pytest.fixture(params=list(STATES))
def case(request, people):
    changes, seen_by = STATES[request.param]
    post = publish(people["owner"], prompt="a glowing jellyfish", caption="#glow sea")
    Clip.objects.filter(pk=post.clip_id).update(**changes)
    return post, seen_by


@pytest.mark.parametrize("viewer", VIEWERS)
def test_post_endpoints_follow_the_visibility_rule(people, case, viewer):
    post, seen_by = case
    client = client_for(people[viewer])
    base = f"/api/v1/posts/{post.public_id}"
    responses = {
        "detail": client.get(base),
        "comments": client.get(f"{base}/comments"),
        "remixes": client.get(f"{base}/remixes"),
        "view": client.post(f"{base}/views", {"watch_ms": 10}, format="json"),
        "comment": client.post(f"{base}/comments", {"body": "hi"}, format="json"),
    }
    if viewer != "owner":
        responses["like"] = client.post(f"{base}/like")
        responses["report"] = client.post(f"{base}/report", {"reason": "spam"}, format="json")
    for name, response in responses.items():
        if viewer in seen_by:
            assert response.status_code in {200, 201, 204}, (name, response.content)
        else:
            assert response.status_code == 404, (name, response.content)
            assert response.json()["error"]["code"] == "post_not_found"
    post.refresh_from_db()
    expected_writes = 1 if viewer in seen_by else 0
    assert (post.views_count, post.comments_count) == (expected_writes, expected_writes)


@pytest.mark.parametrize("viewer", VIEWERS)
def test_lists_and_feeds_follow_the_visibility_rule(people, case, viewer):
    post, seen_by = case
    client = client_for(people[viewer])
    visible = viewer in seen_by

    def listed(url, **params) -> bool:
        response = client.get(url, params)
        if response.status_code == 404:  # a blocked profile answers as a missing one
            return False
        assert response.status_code == 200, response.content
        data = response.json()["data"]
        found = {item["post"]["id"] if "post" in item else item["id"] for item in data}
        return post.public_id in found

    assert listed("/api/v1/users/maker/posts") == visible
    assert listed("/api/v1/search/posts", q="jellyfish") == visible
    assert listed("/api/v1/search/posts", q="#glow") == visible
    assert listed("/api/v1/hashtags/glow/posts") == visible
    # Feeds never show a viewer their own posts; Following shows only people they follow.
    assert listed("/api/v1/feed/for_you") == (visible and viewer != "owner")
    follows = viewer in {"follower", "teen", "staff"}
    assert listed("/api/v1/feed/following") == (visible and follows)


def test_anonymous_sees_only_public_unrestricted_posts(anon_client, people):
    public = publish(people["owner"])
    followers = publish(people["owner"], visibility=ClipAudience.FOLLOWERS)
    restricted = publish(people["owner"])
    Clip.objects.filter(pk=restricted.clip_id).update(age_restricted=True)
    assert anon_client.get(f"/api/v1/posts/{public.public_id}").status_code == 200
    for post in (followers, restricted):
        assert anon_client.get(f"/api/v1/posts/{post.public_id}").status_code == 404


def test_comments_of_blocked_people_are_hidden(people):
    post = publish(people["owner"])
    stranger = people["stranger"]
    client_for(stranger).post(
        f"/api/v1/posts/{post.public_id}/comments", {"body": "from a stranger"}, format="json"
    )
    user_block(blocker=people["follower"], blocked=stranger)
    listing = client_for(people["follower"]).get(f"/api/v1/posts/{post.public_id}/comments")
    assert listing.json()["data"] == []
    assert (
        len(
            client_for(people["owner"])
            .get(f"/api/v1/posts/{post.public_id}/comments")
            .json()["data"]
        )
        == 1
    )
