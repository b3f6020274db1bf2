"""Parental controls are enforced where each feature decides: For You personalisation, the
daily feed limits, comments from strangers, the remix setting of new posts, and the teen's
cameo audience (consent, with its ledger)."""

from __future__ import annotations

import pytest

from accounts.services import user_follow
from cameo import permissions
from cameo import services as cameo_services
from feed.models import Comment, ForYouList
from generation.models import JobStatus
from tests.accounts.helpers import years_ago
from tests.accounts.test_parental_links import BASE, link
from tests.cameo.helpers import actions, befriend, generate, job_from, person_cameo
from tests.factories import TeenFactory, UserFactory
from tests.feed.helpers import client_for, ids, publish
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def parent():
    return UserFactory()


@pytest.fixture
def teen():
    return TeenFactory()


def set_controls(parent, shown: dict, **controls) -> dict:
    response = client_for(parent).patch(
        f"{BASE}/links/{shown['id']}/controls", controls, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def _why(client) -> dict:
    data = client.get("/api/v1/feed/for_you").json()["data"]
    return {item["post"]["id"]: item["why"] for item in data if item["type"] == "post"}


def test_a_parent_turning_personalisation_off_reaches_the_ranking(parent, teen):
    followed = UserFactory()
    user_follow(follower=teen, followee=followed)
    post = publish(followed)
    publish(UserFactory(), prompt="a paper boat on a pond")
    client = client_for(teen)
    assert "followed" in _why(client)[post.public_id]["sources"]

    shown = link(parent, teen)
    set_controls(parent, shown, personalization_off=True)
    # The list ranked ahead of time is stale now, not served again.
    assert ForYouList.objects.get(user=teen).stale_at is not None
    why = _why(client)[post.public_id]
    assert "followed" not in why["sources"] and "followed" not in why["signals"]
    assert client.get("/api/v1/feed/preferences").json()["personalized"] is False
    refused = client.patch("/api/v1/feed/preferences", {"personalized": True}, format="json")
    assert_error(refused, 403, code="parental_control", param="personalized")
    assert (
        client.patch("/api/v1/feed/preferences", {"personalized": False}, format="json").json()[
            "personalized"
        ]
        is False
    )

    # At the adult age the control ends, and the teen's own switch is theirs again.
    teen.birth_date = years_ago(18)
    teen.save(update_fields=["birth_date"])
    response = client_for(teen).patch(
        "/api/v1/feed/preferences", {"personalized": True}, format="json"
    )
    assert response.status_code == 200 and response.json()["personalized"] is True


@pytest.fixture
def followed_posts():
    def make(viewer, n=6):
        posts = []
        for i in range(n):
            author = UserFactory()
            user_follow(follower=viewer, followee=author)
            posts.append(publish(author, prompt=f"clip number {i}"))
        return posts

    return make


def test_a_parents_item_limit_is_tighter_than_the_platforms(settings, parent, teen, followed_posts):
    settings.FEED_TEEN_DAILY_ITEMS = 10
    followed_posts(teen)
    set_controls(parent, link(parent, teen), daily_feed_items=3)
    body = client_for(teen).get("/api/v1/feed/following", {"limit": 5}).json()
    assert len(ids_of(body)) == 3
    assert body["data"][-1]["type"] == "daily_limit" and body["next_cursor"] is None


def ids_of(body: dict) -> list[str]:
    return [item["post"]["id"] for item in body["data"] if item["type"] == "post"]


def test_a_parents_watch_time_limit_ends_the_days_feed(settings, parent, teen, followed_posts):
    settings.FEED_BREAK_AFTER_MINUTES = 600
    posts = followed_posts(teen, n=3)
    set_controls(parent, link(parent, teen), daily_feed_minutes=1)
    client = client_for(teen)
    assert len(ids(client.get("/api/v1/feed/following"))) == 3
    views = f"/api/v1/posts/{posts[0].public_id}/views"
    assert client.post(views, {"watch_ms": 59_000}, format="json").status_code == 204
    assert len(ids(client.get("/api/v1/feed/for_you"))) == 3
    client.post(views, {"watch_ms": 1_000}, format="json")
    for url in ("/api/v1/feed/following", "/api/v1/feed/for_you"):
        body = client.get(url).json()
        assert [item["type"] for item in body["data"]] == ["daily_limit"]
        assert "watch time" in body["data"][0]["message"]
        assert body["next_cursor"] is None
    # The same watching does not limit a teen whose parent set no such limit.
    other = TeenFactory()
    followed_posts(other, n=2)
    assert len(ids(client_for(other).get("/api/v1/feed/following"))) == 2


def test_comments_from_strangers_off(parent, teen):
    friend, stranger = UserFactory(), UserFactory()
    user_follow(follower=teen, followee=friend)
    teen_post = publish(teen)
    url = f"/api/v1/posts/{teen_post.public_id}/comments"
    # Off by default only when the parent says so.
    assert client_for(stranger).post(url, {"body": "nice one"}, format="json").status_code == 201
    set_controls(parent, link(parent, teen), strangers_can_comment=False)

    before = Comment.objects.count()
    refused = client_for(stranger).post(url, {"body": "nice one"}, format="json")
    assert_error(refused, 403, code="comments_restricted")
    assert Comment.objects.count() == before
    for person in (friend, parent, teen):
        assert client_for(person).post(url, {"body": "lovely"}, format="json").status_code == 201

    # Replies to the teen's comment elsewhere are covered too; the rest of that post is not.
    elsewhere = publish(UserFactory())
    other_url = f"/api/v1/posts/{elsewhere.public_id}/comments"
    teen_comment = client_for(teen).post(other_url, {"body": "so cool"}, format="json").json()
    reply = client_for(stranger).post(
        other_url, {"body": "agreed", "parent_id": teen_comment["id"]}, format="json"
    )
    assert_error(reply, 403, code="comments_restricted")
    assert client_for(stranger).post(other_url, {"body": "wow"}, format="json").status_code == 201


def test_remixing_of_a_linked_teens_posts_is_off_until_the_parent_allows_it(parent, teen):
    unlinked = TeenFactory()
    assert publish(unlinked).clip.allow_remix is True
    shown = link(parent, teen)
    post = publish(teen)  # asks for remixing on (the default)
    post.clip.refresh_from_db()
    assert post.clip.allow_remix is False
    client = client_for(teen)
    url = f"/api/v1/posts/{post.public_id}"
    assert client.get(url).json()["allow_remix"] is False
    assert_error(
        client.patch(url, {"allow_remix": True}, format="json"),
        403,
        code="parental_control",
        param="allow_remix",
    )
    post.clip.refresh_from_db()
    assert post.clip.allow_remix is False
    assert (
        client.patch(url, {"caption": "hi", "allow_remix": False}, format="json").status_code == 200
    )

    set_controls(parent, shown, allow_remix=True)
    assert publish(teen).clip.allow_remix is True
    assert client.patch(url, {"allow_remix": True}, format="json").json()["allow_remix"] is True


def test_a_parents_cap_narrows_the_teens_cameo_as_consent(
    settings, parent, teen, django_capture_on_commit_callbacks
):
    settings.GENERATION_GATES = ["cameo.gates.consent_gate"]
    friend = UserFactory()
    befriend(teen, friend)
    cameo = person_cameo(teen, audience="mutuals")
    running = job_from(generate(client_for(friend), f"@{teen.handle} waves"))
    assert running.status == JobStatus.QUEUED
    assert permissions.can_use(cameo, friend)

    shown = link(parent, teen)
    # Jobs are stopped once the change is committed.
    with django_capture_on_commit_callbacks(execute=True):
        set_controls(parent, shown, cameo_audience_max="only_me")
    cameo.refresh_from_db()
    assert cameo.audience == "mutuals"  # the teen's own setting is kept...
    assert permissions.effective_audience(cameo) == "only_me"  # ...but the cap applies
    assert not permissions.can_use(cameo, friend)
    assert permissions.can_use(cameo, teen)
    # Recorded in the consent ledger, and the friend's job in flight is stopped.
    assert actions(cameo)[-1] == "parental_audience_cap"
    running.refresh_from_db()
    assert running.status == JobStatus.BLOCKED
    assert running.error_code == "cameo_consent_withdrawn"
    refused = generate(client_for(friend), f"@{teen.handle} jumps")
    assert refused.status_code >= 400

    # The teen cannot widen past the cap; narrowing within it is theirs.
    for wider in ("approved", "mutuals"):
        response = client_for(teen).patch(
            f"/api/v1/cameos/{cameo.public_id}", {"audience": wider}, format="json"
        )
        assert_error(response, 403, code="parental_control", param="audience")
    cameo = cameo_services.cameo_settings_update(cameo=cameo, actor=teen, audience="only_me")
    assert cameo.audience == "only_me"

    # Removing the link lifts the cap (recorded too).
    client_for(parent).post(f"{BASE}/links/{shown['id']}/revoke")
    cameo = cameo_services.cameo_settings_update(cameo=cameo, actor=teen, audience="mutuals")
    assert permissions.can_use(cameo, friend)
    assert actions(cameo).count("parental_audience_cap") == 2
