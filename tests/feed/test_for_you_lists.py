"""For You lists ranked ahead of time: a session copies the list, the read-time rules still hide
what became hidden since it was ranked, a user without a usable list is ranked inline, lists go
stale on the changes that must show at once, and "see less like this" pushes down posts close in
meaning to the one marked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services import user_block, user_follow
from cameo.models import Appearance, Audience
from feed.models import FeedSession, ForYouList, NotInterested
from feed.services import (
    for_you_list_build,
    for_you_list_refresh_due,
    for_you_list_stale,
    for_you_lists_refresh,
    not_interested_add,
)
from feed.tasks import build_for_you
from generation.models import Clip
from tests.cameo.helpers import person_cameo
from tests.factories import TeenFactory, UserFactory
from tests.feed.helpers import client_for, ids, publish

pytestmark = pytest.mark.django_db

JELLY = "a glowing jellyfish drifting through a dark ocean"


def _session_of(user) -> FeedSession:
    return FeedSession.objects.filter(user=user).order_by("-id").first()


def _start(client, **params):
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/v1/feed/for_you", params)
    assert response.status_code == 200, response.content
    return response, len(captured)


def test_a_built_list_is_what_the_next_session_serves_without_ranking():
    viewer = UserFactory()
    posts = [publish(UserFactory(), prompt=f"clip {i}") for i in range(5)]
    assert build_for_you(str(viewer.pk)) is True
    listed = ForYouList.objects.get(user=viewer)
    assert set(listed.post_ids) == {p.pk for p in posts}
    assert listed.page_ends == [5] and listed.stale_at is None
    # A post published after the ranking is not in this session: the list is what is served.
    late = publish(UserFactory(), prompt="late clip")
    response, queries = _start(client_for(viewer))
    assert ids(response) == [f"post_{pk.hex}" for pk in listed.post_ids]
    assert late.public_id not in ids(response)
    assert _session_of(viewer).post_ids == listed.post_ids
    # Authentication, the API key's last use, the session copied from the list, the page.
    assert queries == 4
    # The task is safe to run twice: a list ranked after the request is left alone.
    assert build_for_you(str(viewer.pk), requested_at=listed.built_at.isoformat()) is False
    assert ForYouList.objects.get(user=viewer).built_at == listed.built_at


def test_a_user_without_a_list_is_ranked_inline_and_the_list_kept():
    viewer = UserFactory()
    posts = [publish(UserFactory(), prompt=f"clip {i}") for i in range(3)]
    assert not ForYouList.objects.filter(user=viewer).exists()
    response, _ = _start(client_for(viewer))
    assert set(ids(response)) == {p.public_id for p in posts}
    listed = ForYouList.objects.get(user=viewer)
    assert listed.post_ids == _session_of(viewer).post_ids
    # The next session is a copy of that list.
    publish(UserFactory(), prompt="newer")
    again, _ = _start(client_for(viewer))
    assert ids(again) == ids(response)


def test_read_time_rules_hide_what_became_hidden_after_the_list_was_ranked():
    viewer = TeenFactory()
    blocked_author, maker = UserFactory(), UserFactory()
    by_blocked = publish(blocked_author, prompt="clip by someone blocked later")
    removed = publish(maker, prompt="clip removed later")
    restricted = publish(maker, prompt="clip age-restricted later")
    with_cameo = publish(maker, prompt="clip whose cameo is removed later")
    disliked = publish(UserFactory(), prompt="clip marked not interested later")
    kept = publish(UserFactory(), prompt="clip that stays")
    for_you_list_build(user=viewer)
    listed = ForYouList.objects.get(user=viewer)
    assert {by_blocked.pk, removed.pk, restricted.pk, with_cameo.pk, kept.pk} <= set(
        listed.post_ids
    )
    user_block(blocker=viewer, blocked=blocked_author)
    Clip.objects.filter(pk=removed.clip_id).update(removed_at=timezone.now())
    Clip.objects.filter(pk=restricted.clip_id).update(age_restricted=True)
    cameo = person_cameo(UserFactory(), audience=Audience.EVERYONE)
    Appearance.objects.create(
        cameo=cameo,
        job_id=with_cameo.clip.job_id,
        user=maker,
        via="prompt",
        ledger_entry="0" * 64,
        removed_at=timezone.now(),
    )
    # Written directly (the service would also mark the list stale): the list is served, and
    # only the read-time rule keeps the post out.
    NotInterested.objects.create(user=viewer, post=disliked, author=disliked.author)
    got = ids(client_for(viewer).get("/api/v1/feed/for_you"))
    # Served from the list (not ranked again)...
    assert ForYouList.objects.get(user=viewer).built_at == listed.built_at
    assert _session_of(viewer).post_ids == listed.post_ids
    # ...with every post hidden since left out.
    assert got == [f"post_{pk.hex}" for pk in listed.post_ids if pk in {kept.pk}]


def test_a_list_marked_stale_is_ranked_again_before_it_is_served(settings):
    viewer = UserFactory()
    publish(UserFactory(), prompt="a football match")
    publish(UserFactory(), prompt=JELLY)
    for_you_list_build(user=viewer)
    built = ForYouList.objects.get(user=viewer).built_at
    client = client_for(viewer)
    steer = client.put("/api/v1/feed/steering", {"text": "more jellyfish"}, format="json")
    assert steer.status_code == 200
    assert ForYouList.objects.get(user=viewer).stale_at is not None
    data = client.get("/api/v1/feed/for_you").json()["data"]
    assert data[0]["why"]["reason"].startswith("Matches what you asked for")
    rebuilt = ForYouList.objects.get(user=viewer)
    assert rebuilt.built_at > built and rebuilt.stale_at is None


def test_a_mark_made_while_ranking_is_kept():
    viewer = UserFactory()
    publish(UserFactory())
    for_you_list_build(user=viewer)
    later = timezone.now() + timedelta(minutes=1)
    ForYouList.objects.filter(user=viewer).update(stale_at=later)
    for_you_list_build(user=viewer)
    assert ForYouList.objects.get(user=viewer).stale_at == later


def test_old_lists_are_ranked_inline_and_aging_ones_refreshed_in_the_background(
    settings, django_capture_on_commit_callbacks
):
    viewer = UserFactory()
    publish(UserFactory(), prompt="first")
    for_you_list_build(user=viewer)
    fresh = publish(UserFactory(), prompt="second")
    # Older than the refresh age, younger than the maximum: served as it is, and a rebuild
    # is asked for.
    aging = timezone.now() - timedelta(seconds=settings.FEED_LIST_REFRESH_SECONDS + 5)
    ForYouList.objects.filter(user=viewer).update(built_at=aging)
    client = client_for(viewer)
    with django_capture_on_commit_callbacks() as callbacks:
        assert fresh.public_id not in ids(client.get("/api/v1/feed/for_you"))
    assert len(callbacks) == 1
    assert ForYouList.objects.get(user=viewer).built_at == aging
    # Older than the maximum: ranked now, so the new post is there.
    too_old = timezone.now() - timedelta(seconds=settings.FEED_LIST_MAX_AGE_SECONDS + 5)
    ForYouList.objects.filter(user=viewer).update(built_at=too_old)
    assert fresh.public_id in ids(client.get("/api/v1/feed/for_you"))
    assert ForYouList.objects.get(user=viewer).built_at > too_old


def test_following_someone_ranks_the_list_again():
    viewer, creator = UserFactory(), UserFactory()
    post = publish(creator, prompt="a paper boat")
    [publish(UserFactory(), prompt=f"newer {i}") for i in range(3)]
    for_you_list_build(user=viewer)
    client = client_for(viewer)
    assert client.get("/api/v1/feed/for_you").json()["data"][0]["post"]["id"] != post.public_id
    user_follow(follower=viewer, followee=creator)
    first = client.get("/api/v1/feed/for_you").json()["data"][0]
    assert first["post"]["id"] == post.public_id
    assert "followed" in first["why"]["sources"]


def test_other_page_sizes_are_cut_from_the_list_with_the_same_rules(settings):
    viewer, prolific = UserFactory(), UserFactory()
    user_follow(follower=viewer, followee=prolific)
    for i in range(5):
        publish(prolific, prompt=f"prolific {i}")
    others = [publish(UserFactory(), prompt=f"other {i}") for i in range(3)]
    for_you_list_build(user=viewer)
    built = ForYouList.objects.get(user=viewer).built_at
    client = client_for(viewer)
    seen, cursor = [], None
    while True:
        page = client.get(
            "/api/v1/feed/for_you", {"limit": 3, **({"cursor": cursor} if cursor else {})}
        )
        handles = [item["post"]["author"]["handle"] for item in page.json()["data"]]
        assert handles.count(prolific.handle) <= 2 and len(handles) <= 3
        seen += ids(page)
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 8
    assert {p.public_id for p in others} <= set(seen)
    assert ForYouList.objects.get(user=viewer).built_at == built


def test_the_periodic_refresh_asks_for_recently_active_users_with_old_lists(
    settings, django_capture_on_commit_callbacks
):
    active, idle, current = UserFactory(), UserFactory(), UserFactory()
    publish(UserFactory())
    for user in (active, idle, current):
        for_you_list_build(user=user)
        client_for(user).get("/api/v1/feed/for_you")
    old = timezone.now() - timedelta(seconds=settings.FEED_LIST_REFRESH_SECONDS + 5)
    ForYouList.objects.filter(user__in=[active, idle]).update(built_at=old)
    # The idle user's last session is older than the activity window.
    FeedSession.objects.filter(user=idle).delete()
    with django_capture_on_commit_callbacks() as callbacks:
        assert for_you_lists_refresh() == 1
    assert len(callbacks) == 1
    assert for_you_list_refresh_due(user_id=active.pk, requested_at=timezone.now())
    assert not for_you_list_refresh_due(user_id=current.pk)


def test_see_less_like_this_pushes_down_posts_close_in_meaning():
    viewer = UserFactory()
    football = publish(UserFactory(), prompt="football players scoring a goal in a stadium")
    disliked = publish(UserFactory(), prompt=JELLY)
    similar = publish(UserFactory(), prompt="a jellyfish glowing in the deep dark sea")
    client = client_for(viewer)
    before = ids(client.get("/api/v1/feed/for_you"))
    # Newest first when nothing else differs.
    assert before.index(similar.public_id) < before.index(football.public_id)
    assert not_interested_add(post=disliked, user=viewer) is True
    data = client.get("/api/v1/feed/for_you").json()["data"]
    after = [item["post"]["id"] for item in data]
    assert disliked.public_id not in after
    # Another author, so only closeness in meaning can have pushed it below the older post.
    assert similar.author_id != disliked.author_id
    assert after.index(similar.public_id) > after.index(football.public_id)
    why = {item["post"]["id"]: item["why"] for item in data}
    assert why[similar.public_id]["signals"]["seen_less_similar"] < 0
    assert "seen_less_similar" not in why[football.public_id]["signals"]


def test_marking_stale_without_a_list_is_harmless():
    viewer = UserFactory()
    for_you_list_stale(user=viewer)
    assert not ForYouList.objects.filter(user=viewer).exists()


def test_following_pages_skip_and_repeat_nothing_when_most_candidates_are_hidden():
    viewer, author = UserFactory(), UserFactory()
    user_follow(follower=viewer, followee=author)
    posts = [publish(author, prompt=f"clip {i}") for i in range(10)]
    hidden = [posts[i] for i in (1, 2, 3, 5, 6, 7, 8)]
    Clip.objects.filter(pk__in=[p.clip_id for p in hidden]).update(held_at=timezone.now())
    client = client_for(viewer)
    seen, cursor, pages = [], None, 0
    while True:
        page = client.get(
            "/api/v1/feed/following", {"limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200
        assert len(ids(page)) <= 2
        seen += ids(page)
        pages += 1
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    visible = [p for p in posts if p not in hidden]
    assert seen == [p.public_id for p in reversed(visible)]
    assert pages <= 4


def test_a_cached_feed_query_refuses_a_rule_that_reads_more_than_the_viewer_kind(monkeypatch):
    """The compiled query is shared by viewers of one kind (authenticated, staff, teen): a
    visibility rule that also reads something else is caught (tests compile afresh too)."""
    from django.core.exceptions import ImproperlyConfigured
    from django.db.models import Q

    from feed import selectors

    plain, other = UserFactory(handle="plainviewer"), UserFactory(handle="xviewer")
    post = publish(UserFactory())
    rule = selectors.clips_visible_q

    def reads_the_handle(user):
        extra = Q(age_restricted=False) if user.handle.startswith("x") else Q()
        return rule(user) & extra

    monkeypatch.setattr(selectors, "_compiled", {})
    monkeypatch.setattr(selectors, "clips_visible_q", reads_the_handle)
    assert [r["id"] for r in selectors.feed_rows(viewer=plain, ids=[post.pk])] == [post.pk]
    with pytest.raises(ImproperlyConfigured):
        selectors.feed_rows(viewer=other, ids=[post.pk])
