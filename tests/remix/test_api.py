"""The lineage API: a clip's place in the graph and the pages around it, showing only clips the
viewer may see, with cursors that step over the others without a trace."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services import user_block
from generation.models import ClipAudience
from generation.services import clip_remove
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.remix.helpers import make_clip
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db

ENDPOINTS = ["", "/ancestors", "/children", "/descendants", "/siblings"]


@pytest.fixture
def tree():
    """a <- b1, b2 (draft), b3 (removed), b4 (by someone the viewer blocked); b1 <- c <- d."""
    alice, carol, viewer = UserFactory(), UserFactory(), UserFactory()
    a = make_clip(alice, prompt="original")
    b1 = make_clip(carol, parent=a)
    b2 = make_clip(carol, parent=a, audience=ClipAudience.ONLY_ME)
    b3 = make_clip(carol, parent=a)
    clip_remove(clip=b3, actor="staff:1", reason="policy")
    blocked = UserFactory()
    b4 = make_clip(blocked, parent=a)
    user_block(blocker=viewer, blocked=blocked)
    c = make_clip(alice, parent=b1)
    d = make_clip(carol, parent=c)
    return {"a": a, "b1": b1, "b2": b2, "b3": b3, "b4": b4, "c": c, "d": d, "viewer": viewer}


def _ids(body) -> list[str]:
    return [item["id"] for item in body["data"]]


def test_descendants_breadth_first_omit_what_the_viewer_may_not_see(tree):
    client = client_for(tree["viewer"])
    body = client.get(f"/api/v1/lineage/{tree['a'].job.public_id}/descendants").json()
    assert _ids(body) == [tree[k].job.public_id for k in ("b1", "c", "d")]
    assert [item["distance"] for item in body["data"]] == [1, 2, 3]
    assert body["has_more"] is False and body["next_cursor"] is None
    first = body["data"][0]
    assert first == {
        "object": "lineage.clip",
        "id": tree["b1"].job.public_id,
        "creator": tree["b1"].user.handle,
        "created_at": tree["b1"].created_at.isoformat(),
        "kind": "remix",
        "distance": 1,
        "depth": 1,
        "remix_count": 1,
        "total_remix_count": 2,
    }
    # The creator of the draft sees it in the same list.
    owner = client_for(tree["b2"].user)
    body = owner.get(f"/api/v1/lineage/{tree['a'].job.public_id}/descendants").json()
    assert _ids(body) == [tree[k].job.public_id for k in ("b1", "b2", "b4", "c", "d")]


def test_cursor_pages_walk_the_same_list_one_item_at_a_time(tree):
    client = client_for(tree["viewer"])
    url = f"/api/v1/lineage/{tree['a'].job.public_id}/descendants"
    seen, cursor = [], None
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        body = client.get(url, params).json()
        seen += _ids(body)
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert seen == [tree[k].job.public_id for k in ("b1", "c", "d")]


def test_children_siblings_and_ancestors(tree):
    client = client_for(tree["viewer"])
    base = "/api/v1/lineage/"
    children = client.get(f"{base}{tree['a'].job.public_id}/children").json()
    assert _ids(children) == [tree["b1"].job.public_id]
    ancestors = client.get(f"{base}{tree['d'].job.public_id}/ancestors").json()
    assert _ids(ancestors) == [tree[k].job.public_id for k in ("c", "b1", "a")]
    assert [item["distance"] for item in ancestors["data"]] == [1, 2, 3]
    siblings = client_for(tree["b2"].user).get(f"{base}{tree['b1'].job.public_id}/siblings")
    # b3 was removed: nobody sees it; b2 is carol's own draft.
    assert _ids(siblings.json()) == [tree[k].job.public_id for k in ("b2", "b4")]
    assert _ids(client.get(f"{base}{tree['b1'].job.public_id}/siblings").json()) == []
    assert _ids(client.get(f"{base}{tree['a'].job.public_id}/ancestors").json()) == []


def test_summary_credits_parent_and_original_with_exact_counts(tree):
    client = client_for(tree["viewer"])
    body = client.get(f"/api/v1/lineage/{tree['d'].job.public_id}").json()
    assert body["object"] == "lineage" and body["depth"] == 3
    assert [p["id"] for p in body["parents"]] == [tree["c"].job.public_id]
    assert body["original"]["id"] == tree["a"].job.public_id
    assert body["original"]["creator"] == tree["a"].user.handle
    root = client.get(f"/api/v1/lineage/{tree['a'].job.public_id}").json()
    # Counts are totals: they say how many, never which.
    assert (root["remix_count"], root["total_remix_count"]) == (4, 6)
    assert root["parents"] == [] and root["original"]["id"] == tree["a"].job.public_id
    assert root["remixes_per_hour"] > 0 and root["tree_remixes_per_hour"] > 0


def test_a_hidden_original_is_not_revealed(tree):
    tree["a"].held_at = timezone.now()
    tree["a"].save(update_fields=["held_at"])
    body = client_for(tree["viewer"]).get(f"/api/v1/lineage/{tree['c'].job.public_id}").json()
    assert body["original"] is None
    assert [p["id"] for p in body["parents"]] == [tree["b1"].job.public_id]


def test_a_clip_never_remixed_has_an_empty_lineage():
    clip = make_clip(UserFactory())
    client = client_for(UserFactory())
    body = client.get(f"/api/v1/lineage/{clip.job.public_id}").json()
    assert (body["depth"], body["remix_count"], body["total_remix_count"]) == (0, 0, 0)
    assert body["original"]["id"] == clip.job.public_id
    for suffix in ENDPOINTS[1:]:
        listed = client.get(f"/api/v1/lineage/{clip.job.public_id}{suffix}").json()
        assert listed == {"object": "list", "data": [], "has_more": False, "next_cursor": None}


@pytest.mark.parametrize("suffix", ENDPOINTS)
def test_a_clip_the_viewer_may_not_see_is_a_404_like_a_missing_one(tree, suffix):
    client = client_for(tree["viewer"])
    for key in ("b2", "b3", "b4"):
        response = client.get(f"/api/v1/lineage/{tree[key].job.public_id}{suffix}")
        assert_error(response, 404, code="video_not_found", param="video_id")
    response = client.get(f"/api/v1/lineage/not-an-id{suffix}")
    assert_error(response, 404, code="video_not_found", param="video_id")


@pytest.mark.parametrize("suffix", ENDPOINTS)
def test_anonymous_requests_are_refused(tree, anon_client, suffix):
    response = anon_client.get(f"/api/v1/lineage/{tree['a'].job.public_id}{suffix}")
    assert response.status_code == 401


@pytest.mark.parametrize("suffix", ENDPOINTS[1:])
@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "garbage"}, "invalid_cursor"),
        ({"cursor": "WyJ4Il0"}, "invalid_cursor"),  # ["x"]
        ({"cursor": "WyItMSIsIjEiXQ"}, "invalid_cursor"),  # ["-1","1"]
        ({"limit": 0}, "invalid_limit"),
        ({"limit": "x"}, "invalid_limit"),
    ],
)
def test_malformed_paging_is_a_400(tree, suffix, params, code):
    client = client_for(tree["viewer"])
    response = client.get(f"/api/v1/lineage/{tree['a'].job.public_id}{suffix}", params)
    assert_error(response, 400, code=code, param=params and next(iter(params)))


@pytest.mark.parametrize("suffix", ["/descendants", "/children"])
def test_a_page_costs_the_same_queries_whatever_its_size(suffix):
    original = make_clip(UserFactory())
    for _ in range(30):
        make_clip(UserFactory(), parent=original)
    client = client_for(UserFactory())
    url = f"/api/v1/lineage/{original.job.public_id}{suffix}"
    client.get(url, {"limit": 2})
    counts = []
    for limit in (2, 25):
        with CaptureQueriesContext(connection) as captured:
            assert len(client.get(url, {"limit": limit}).json()["data"]) == limit
        counts.append(len(captured))
    assert counts[0] == counts[1]


def test_a_long_run_of_hidden_clips_gives_a_short_page_whose_cursor_goes_on(monkeypatch):
    from remix import selectors

    monkeypatch.setattr(selectors, "MAX_SCAN_BATCHES", 1)
    original = make_clip(UserFactory())
    for _ in range(5):
        make_clip(UserFactory(), parent=original, audience=ClipAudience.ONLY_ME)
    shown = make_clip(UserFactory(), parent=original)
    client = client_for(UserFactory())
    url = f"/api/v1/lineage/{original.job.public_id}/children"
    body = client.get(url, {"limit": 2}).json()
    assert body["data"] == [] and body["has_more"] is True
    seen, cursor = [], body["next_cursor"]
    while cursor:
        body = client.get(url, {"limit": 2, "cursor": cursor}).json()
        seen += _ids(body)
        cursor = body["next_cursor"]
    assert seen == [shown.job.public_id]
