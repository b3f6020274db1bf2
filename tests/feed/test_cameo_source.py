"""Cameo connections as a For You source, a cameo's public appearances, and removed cameo
appearances kept out of feeds."""

from __future__ import annotations

import pytest
from django.utils import timezone

from cameo.models import Appearance, Audience, CameoGrant, GrantStatus
from tests.cameo.helpers import person_cameo
from tests.factories import UserFactory
from tests.feed.helpers import client_for, ids, publish
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db


def _appears(cameo, post) -> Appearance:
    return Appearance.objects.create(
        cameo=cameo, job_id=post.clip.job_id, user=post.author, via="prompt", ledger_entry="0" * 64
    )


def test_people_connected_by_cameo_grants_are_a_source():
    viewer, friend = UserFactory(), UserFactory()
    cameo = person_cameo(friend, audience=Audience.APPROVED)
    CameoGrant.objects.create(cameo=cameo, grantee=viewer, status=GrantStatus.ACCEPTED)
    theirs = publish(friend, prompt="a lighthouse at dusk")
    newer = [publish(UserFactory(), prompt=f"a street market {i}") for i in range(3)]
    data = client_for(viewer).get("/api/v1/feed/for_you").json()["data"]
    assert data[0]["post"]["id"] == theirs.public_id
    why = data[0]["why"]
    assert "cameo" in why["sources"]
    assert why["reason"] == f"From @{friend.handle}, connected to you through cameos"
    assert {p.public_id for p in newer} <= {item["post"]["id"] for item in data}


def test_posts_showing_my_cameo_are_a_source_and_removed_appearances_never_show():
    me, maker = UserFactory(), UserFactory()
    cameo = person_cameo(me, audience=Audience.EVERYONE)
    with_me = publish(maker, prompt="me surfing a huge wave")
    removed = publish(maker, prompt="me in a place I did not like")
    _appears(cameo, with_me)
    Appearance.objects.filter(pk=_appears(cameo, removed).pk).update(removed_at=timezone.now())
    got = {
        item["post"]["id"]: item["why"]
        for item in client_for(me).get("/api/v1/feed/for_you").json()["data"]
    }
    assert "cameo" in got[with_me.public_id]["sources"]
    assert removed.public_id not in got
    assert removed.public_id not in ids(client_for(UserFactory()).get("/api/v1/feed/for_you"))


def test_a_cameos_public_appearances():
    owner, maker, stranger = UserFactory(), UserFactory(), UserFactory()
    cameo = person_cameo(owner, audience=Audience.EVERYONE)
    shown = publish(maker, prompt="a duet")
    removed = publish(maker, prompt="a prank")
    private = publish(maker, prompt="a rehearsal", visibility="only_me")
    _appears(cameo, shown)
    _appears(cameo, private)
    Appearance.objects.filter(pk=_appears(cameo, removed).pk).update(removed_at=timezone.now())
    url = f"/api/v1/cameos/handles/{cameo.handle}/posts"
    listing = client_for(stranger).get(url)
    assert listing.status_code == 200, listing.content
    assert [p["id"] for p in listing.json()["data"]] == [shown.public_id]
    assert_error(
        client_for(stranger).get("/api/v1/cameos/handles/nobody_here/posts"),
        404,
        code="cameo_not_found",
    )
    hidden = person_cameo(maker, audience=Audience.ONLY_ME)
    assert_error(
        client_for(stranger).get(f"/api/v1/cameos/handles/{hidden.handle}/posts"),
        404,
        code="cameo_not_found",
    )
