"""Following and For You: order, paging, ranking rules, steering, session stability, and a
constant number of queries per page."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services import user_follow
from feed.models import FeedSession
from feed.services import for_you_list_stale, like_add
from feed.tasks import build_for_you, prune_sessions
from remix.models import LineageNode
from tests.factories import UserFactory
from tests.feed.helpers import client_for, ids, publish

pytestmark = pytest.mark.django_db

JELLY = "glowing jellyfish drifting through a dark ocean"
FOOTBALL = "football players scoring a goal in a packed stadium"


def test_following_is_newest_first_with_stable_cursor_paging():
    viewer = UserFactory()
    authors = [UserFactory() for _ in range(3)]
    for a in authors:
        user_follow(follower=viewer, followee=a)
    stranger_post = publish(UserFactory())
    posts = [publish(authors[i % 3], prompt=f"clip {i}") for i in range(7)]
    client = client_for(viewer)
    first = client.get("/api/v1/feed/following", {"limit": 3})
    assert ids(first) == [p.public_id for p in posts[::-1][:3]]
    assert first.json()["data"][0]["why"]["reason"].startswith("From @")
    # Posts arriving while scrolling neither repeat nor shift the pages already cut.
    publish(authors[0], prompt="late arrival")
    cursor = first.json()["next_cursor"]
    second = client.get("/api/v1/feed/following", {"limit": 3, "cursor": cursor})
    third = client.get(
        "/api/v1/feed/following", {"limit": 3, "cursor": second.json()["next_cursor"]}
    )
    assert ids(second) == [p.public_id for p in posts[::-1][3:6]]
    assert ids(third) == [posts[0].public_id]
    assert third.json()["has_more"] is False
    assert stranger_post.public_id not in ids(first) + ids(second) + ids(third)


@pytest.mark.parametrize("url", ["/api/v1/feed/following", "/api/v1/feed/for_you"])
@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"cursor": "!!!"}, "invalid_cursor", "cursor"),
        ({"cursor": "WyJhIl0"}, "invalid_cursor", "cursor"),
        ({"limit": "0"}, "invalid_limit", "limit"),
        ({"limit": "many"}, "invalid_limit", "limit"),
    ],
)
def test_feeds_refuse_malformed_paging(url, params, code, param):
    from tests.support.errors import assert_error

    assert_error(client_for(UserFactory()).get(url, params), 400, code=code, param=param)


def test_for_you_explains_each_item_and_excludes_own_and_not_interested():
    viewer = UserFactory()
    followed = UserFactory()
    user_follow(follower=viewer, followee=followed)
    mine = publish(viewer)
    theirs = publish(followed, prompt="a paper boat on a river")
    fresh = publish(UserFactory(), prompt="a kite over a beach")
    dull = publish(UserFactory(), prompt="a grey wall")
    client = client_for(viewer)
    client.post(f"/api/v1/posts/{dull.public_id}/not_interested")
    response = client.get("/api/v1/feed/for_you")
    assert response.status_code == 200
    body = response.json()
    assert body["session_id"].startswith("fs_")
    got = ids(response)
    assert mine.public_id not in got and dull.public_id not in got
    assert got[0] == theirs.public_id
    items = {item["post"]["id"]: item["why"] for item in body["data"]}
    assert items[theirs.public_id]["reason"] == f"From @{followed.handle}, whom you follow"
    assert "followed" in items[theirs.public_id]["sources"]
    assert items[theirs.public_id]["signals"]["followed"] == 3.0
    assert items[fresh.public_id]["reason"] == "New on Montage"


def test_author_diversity_per_page():
    viewer = UserFactory()
    prolific = UserFactory()
    user_follow(follower=viewer, followee=prolific)
    for i in range(6):
        publish(prolific, prompt=f"prolific clip {i}")
    others = [publish(UserFactory(), prompt=f"other clip {i}") for i in range(4)]
    client = client_for(viewer)
    first = client.get("/api/v1/feed/for_you", {"limit": 4})
    authors = [item["post"]["author"]["handle"] for item in first.json()["data"]]
    assert authors.count(prolific.handle) == 2
    # Followed posts score highest, but the rule leaves room for others on every page.
    assert len(set(authors)) == 3
    seen = ids(first)
    cursor = first.json()["next_cursor"]
    while cursor:
        # The session keeps its page size even if a later request asks for another.
        page = client.get("/api/v1/feed/for_you", {"cursor": cursor, "limit": 50})
        handles = [item["post"]["author"]["handle"] for item in page.json()["data"]]
        assert handles.count(prolific.handle) <= 2
        assert len(handles) <= 4
        seen += ids(page)
        cursor = page.json()["next_cursor"]
    assert len(seen) == len(set(seen)) == 10
    assert {p.public_id for p in others} <= set(seen)


def test_one_item_per_remix_chain_per_page():
    viewer = UserFactory()
    original = publish(UserFactory(), prompt="a dancing robot")
    remixes = [
        publish(UserFactory(), prompt=f"a dancing robot, remix {i}", parent=original.clip)
        for i in range(3)
    ]
    root = LineageNode.objects.get(job_id=original.clip.job_id)
    assert LineageNode.objects.filter(root=root).count() == 3
    singles = [publish(UserFactory(), prompt=f"unrelated {i}") for i in range(3)]
    client = client_for(viewer)
    chain = {original.public_id} | {r.public_id for r in remixes}
    cursor, pages = None, []
    while True:
        response = client.get(
            "/api/v1/feed/for_you", {"limit": 3, **({"cursor": cursor} if cursor else {})}
        )
        pages.append(ids(response))
        cursor = response.json()["next_cursor"]
        if not cursor:
            break
    for page in pages:
        assert len(chain & set(page)) <= 1
    assert {p for page in pages for p in page} == chain | {s.public_id for s in singles}
    remix_page = client.get(f"/api/v1/posts/{original.public_id}/remixes").json()["data"]
    assert {item["id"] for item in remix_page} == {r.public_id for r in remixes}
    detail = client.get(f"/api/v1/posts/{original.public_id}").json()
    assert detail["counts"]["remixes"] == 3


def test_steering_shifts_ranking_until_cleared():
    viewer = UserFactory()
    jelly = [publish(UserFactory(), prompt=f"{JELLY}, take {i}") for i in range(4)]
    ball = [publish(UserFactory(), prompt=f"{FOOTBALL}, take {i}") for i in range(4)]
    client = client_for(viewer)
    jelly_ids, ball_ids = {p.public_id for p in jelly}, {p.public_id for p in ball}

    def order():
        return ids(client.get("/api/v1/feed/for_you", {"limit": 20}))

    before = order()
    # Unsteered, the newer football clips come first (freshness).
    assert set(before[:4]) == ball_ids
    steer = client.put(
        "/api/v1/feed/steering",
        {"text": "more jellyfish and sea creatures, less football"},
        format="json",
    )
    assert steer.status_code == 200
    assert steer.json()["steering"] == "more jellyfish and sea creatures, less football"
    steered = client.get("/api/v1/feed/for_you", {"limit": 20}).json()["data"]
    assert {i["post"]["id"] for i in steered[:4]} == jelly_ids
    assert steered[0]["why"]["reason"].startswith("Matches what you asked for")
    assert steered[0]["why"]["signals"]["steering"] > 0
    assert steered[-1]["why"]["signals"]["steering"] < 0
    assert client.delete("/api/v1/feed/steering").status_code == 204
    assert set(order()[:4]) == ball_ids


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"text": ""}, "blank"),
        ({"text": "x" * 301}, "max_length"),
        ({}, "required"),
        ({"text": "less"}, "invalid_steering"),
    ],
)
def test_steering_refuses_malformed_text(payload, code):
    from tests.support.errors import assert_error

    viewer = UserFactory()
    response = client_for(viewer).put("/api/v1/feed/steering", payload, format="json")
    assert_error(response, 400, code=code, param="text")
    prefs = client_for(viewer).get("/api/v1/feed/preferences").json()
    assert prefs["steering"] is None


def test_liked_posts_pull_similar_ones_up():
    viewer = UserFactory()
    liked = publish(UserFactory(), prompt=JELLY)
    like_add(post=liked, user=viewer)
    similar = publish(UserFactory(), prompt="a jellyfish glowing in the deep sea")
    newer = [publish(UserFactory(), prompt=f"{FOOTBALL} {i}") for i in range(3)]
    data = client_for(viewer).get("/api/v1/feed/for_you").json()["data"]
    got = [i["post"]["id"] for i in data]
    assert got.index(similar.public_id) < min(got.index(p.public_id) for p in newer)
    why = {i["post"]["id"]: i["why"] for i in data}[similar.public_id]
    assert "similar" in why["sources"]


def test_personalisation_off_drops_personal_signals():
    viewer = UserFactory()
    followed = UserFactory()
    user_follow(follower=viewer, followee=followed)
    post = publish(followed)
    client = client_for(viewer)
    assert (
        client.patch(
            "/api/v1/feed/preferences", {"personalized": "maybe"}, format="json"
        ).status_code
        == 400
    )
    assert (
        client.patch("/api/v1/feed/preferences", {"personalized": False}, format="json").json()[
            "personalized"
        ]
        is False
    )
    data = client.get("/api/v1/feed/for_you").json()["data"]
    why = {i["post"]["id"]: i["why"] for i in data}[post.public_id]
    assert "followed" not in why["signals"] and "followed" not in why["sources"]


def test_session_is_stable_while_posts_arrive_concurrently(transactional_db):
    viewer = UserFactory()
    for i in range(12):
        publish(UserFactory(), prompt=f"early clip {i}")
    client = client_for(viewer)
    first = client.get("/api/v1/feed/for_you", {"limit": 4})
    session = FeedSession.objects.get(user=viewer)
    stop = threading.Event()

    def writer():
        try:
            while not stop.is_set():
                publish(UserFactory(), prompt="breaking news clip")
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen = ids(first)
        cursor = first.json()["next_cursor"]
        while cursor:
            page = client.get("/api/v1/feed/for_you", {"cursor": cursor})
            seen += ids(page)
            cursor = page.json()["next_cursor"]
    finally:
        stop.set()
        thread.join()
    assert seen == [f"post_{pk.hex}" for pk in session.post_ids]
    assert len(seen) == 12
    # A fresh session (no cursor) sees the new posts once the list is ranked again (the
    # worker task the periodic refresh sends).
    assert build_for_you(str(viewer.pk), requested_at=timezone.now().isoformat())
    again = ids(client.get("/api/v1/feed/for_you", {"limit": 50}))
    assert len(again) > 12


def test_session_cursor_of_someone_else_or_expired_is_refused(settings):
    from tests.support.errors import assert_error

    viewer = UserFactory()
    for i in range(3):
        publish(UserFactory(), prompt=f"clip {i}")
    cursor = client_for(viewer).get("/api/v1/feed/for_you", {"limit": 1}).json()["next_cursor"]
    other = client_for(UserFactory()).get("/api/v1/feed/for_you", {"cursor": cursor})
    assert_error(other, 400, code="invalid_cursor", param="cursor")
    FeedSession.objects.update(created_at=FeedSession.objects.get().created_at - timedelta(days=1))
    expired = client_for(viewer).get("/api/v1/feed/for_you", {"cursor": cursor})
    assert_error(expired, 400, code="feed_session_expired", param="cursor")
    assert prune_sessions() == 1
    assert not FeedSession.objects.exists()


def _queries(client, url, params) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured)


def test_query_count_per_page_is_constant():
    viewer = UserFactory()
    authors = [UserFactory() for _ in range(6)]
    for a in authors:
        user_follow(follower=viewer, followee=a)

    def seed(n):
        for i in range(n):
            post = publish(authors[i % 6], prompt=f"clip {i}", caption="#tag")
            like_add(post=post, user=viewer)

    seed(12)
    client = client_for(viewer)
    first = client.get("/api/v1/feed/for_you", {"limit": 2})
    cursor = first.json()["next_cursor"]
    page2 = _queries(client, "/api/v1/feed/for_you", {"cursor": cursor})
    following = _queries(client, "/api/v1/feed/following", {"limit": 2})
    start = _queries(client, "/api/v1/feed/for_you", {"limit": 2})
    start_listed = _queries(client, "/api/v1/feed/for_you", {})
    for_you_list_stale(user=viewer)
    start_ranked = _queries(client, "/api/v1/feed/for_you", {})
    seed(24)  # three times the data; later pages
    # A new session from the ranked list, cut for its page size or for another.
    assert _queries(client, "/api/v1/feed/for_you", {"limit": 2}) == start
    assert _queries(client, "/api/v1/feed/for_you", {}) == start_listed
    # Ranking a new session: one query per candidate source and per signal, whatever the data.
    for_you_list_stale(user=viewer)
    assert _queries(client, "/api/v1/feed/for_you", {}) == start_ranked
    for _ in range(3):
        cursor = client.get("/api/v1/feed/for_you", {"cursor": cursor}).json()["next_cursor"]
    assert _queries(client, "/api/v1/feed/for_you", {"cursor": cursor}) == page2
    cursor = client.get("/api/v1/feed/following", {"limit": 2}).json()["next_cursor"]
    for _ in range(3):
        cursor = client.get("/api/v1/feed/following", {"limit": 2, "cursor": cursor}).json()[
            "next_cursor"
        ]
    assert _queries(client, "/api/v1/feed/following", {"limit": 2, "cursor": cursor}) == following
    # Pinned. Scrolling: authentication, the session's page, the posts (with the viewer's likes
    # and remix counts). Following: authentication, the posts. A new session: authentication,
    # the session copied from the ranked list, the posts; cut for another page size: the list,
    # the follows it was ranked with, the session. Ranked inline: the ranking's queries, the
    # list kept, the session, the posts.
    assert (page2, following, start, start_listed, start_ranked) == (
        PINNED_FOR_YOU,
        PINNED_FOLLOWING,
        PINNED_START,
        PINNED_START_LISTED,
        PINNED_START_RANKED,
    )


PINNED_FOR_YOU = 3
PINNED_FOLLOWING = 2
PINNED_START = 5
PINNED_START_LISTED = 3
PINNED_START_RANKED = 24


@pytest.mark.parametrize(
    ("text", "more", "less"),
    [
        ("more cozy animation, less sports", ["cozy animation"], ["sports"]),
        ("cats and less dogs", ["cats"], ["dogs"]),
        ("no horror; show me ocean documentaries", ["ocean documentaries"], ["horror"]),
        ("calm music but fewer ads", ["calm music"], ["ads"]),
    ],
)
def test_steering_text_splits_into_more_and_less(text, more, less):
    from feed.services import steering_parse

    assert steering_parse(text) == (more, less)


def test_posts_hidden_after_the_session_was_ranked_are_left_out():
    from generation.models import Clip

    viewer = UserFactory()
    posts = [publish(UserFactory(), prompt=f"clip {i}") for i in range(4)]
    client = client_for(viewer)
    first = client.get("/api/v1/feed/for_you", {"limit": 2})
    session = FeedSession.objects.get(user=viewer)
    later = [f"post_{pk.hex}" for pk in session.post_ids[2:]]
    hidden = next(p for p in posts if p.public_id == later[0])
    Clip.objects.filter(pk=hidden.clip_id).update(held_at=hidden.created_at)
    second = client.get("/api/v1/feed/for_you", {"cursor": first.json()["next_cursor"]})
    assert ids(second) == later[1:]
