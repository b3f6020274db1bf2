"""Every cameo endpoint x every kind of caller: who may read, use, grant, revoke, see
appearances and read the ledger — and that those excluded learn nothing, not even that the
cameo exists (their answers are exactly those for a cameo that does not)."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from accounts.services import user_block
from cameo import services
from cameo.models import Cameo, CameoGrant, CameoStatus, LedgerEntry
from generation.models import GenerationJob
from tests.cameo.helpers import befriend, character, person_cameo
from tests.factories import TeenFactory, UserFactory
from tests.fixtures import client_for
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db

ROLES = ["owner", "approved", "mutual", "stranger", "blocked", "teen", "staff", "anonymous"]

# audience -> the roles that may use (and so see) the cameo; staff may only read it.
USERS = {
    "mutuals": {"owner", "approved", "mutual"},
    "approved": {"owner", "approved"},
    "everyone": {"owner", "approved", "mutual", "stranger", "teen", "staff"},
    "only_me": {"owner"},
}


def _cast(audience: str) -> dict:
    owner = UserFactory(handle="alice")
    cameo = person_cameo(owner, audience=audience)
    approved, mutual, blocked = UserFactory(), UserFactory(), UserFactory()
    services.grant_create(cameo=cameo, grantee=approved, actor=owner)
    befriend(owner, mutual)
    # Blocks always win: a grant and a mutual follow before the block change nothing.
    services.grant_create(cameo=cameo, grantee=blocked, actor=owner)
    befriend(owner, blocked)
    user_block(blocker=owner, blocked=blocked)
    users = {
        "owner": owner,
        "approved": approved,
        "mutual": mutual,
        "stranger": UserFactory(),
        "blocked": blocked,
        "teen": TeenFactory(),
        "staff": UserFactory(is_staff=True),
    }
    clients = {role: client_for(user) for role, user in users.items()}
    clients["anonymous"] = APIClient()
    return {"cameo": cameo, "users": users, "clients": clients}


def _same_as_missing(response, missing, real_id: str, fake_id: str) -> None:
    """A hidden cameo's answer is the answer for an id that never existed."""
    assert response.status_code == missing.status_code
    assert response.json() == {
        "error": {
            **missing.json()["error"],
            "message": missing.json()["error"]["message"].replace(fake_id, real_id),
        }
    }


def _state(cameo: Cameo) -> tuple:
    cameo.refresh_from_db()
    return (
        cameo.status,
        cameo.audience,
        LedgerEntry.objects.filter(cameo=cameo).count(),
        CameoGrant.objects.filter(cameo=cameo).count(),
    )


@pytest.mark.parametrize("audience", list(USERS))
@pytest.mark.parametrize("role", ROLES)
def test_cameo_endpoints_by_caller(audience, role):
    cast = _cast(audience)
    cameo, api = cast["cameo"], cast["clients"][role]
    cid = cameo.public_id
    fake = f"cameo_{uuid.uuid4().hex}"
    may_use = role in USERS[audience]
    may_read = may_use or role == "staff"
    is_owner = role == "owner"

    if role == "anonymous":
        for method, path in [
            ("get", f"/api/v1/cameos/{cid}"),
            ("get", "/api/v1/cameos/handles/alice"),
            ("get", f"/api/v1/cameos/{cid}/ledger"),
            ("get", f"/api/v1/cameos/{cid}/appearances"),
            ("get", f"/api/v1/cameos/{cid}/grants"),
            ("post", f"/api/v1/cameos/{cid}/revoke"),
            ("post", "/api/v1/generations"),
        ]:
            assert_error(getattr(api, method)(path), 401, code="not_authenticated")
        return

    before = _state(cameo)
    # read, by id and by handle
    response = api.get(f"/api/v1/cameos/{cid}")
    if may_read:
        assert response.status_code == 200
        body = response.json()
        assert (body["id"], body["handle"], body["owner"]) == (cid, "alice", "alice")
        # Only the owner sees the settings and the verification outcome.
        assert ("audience" in body) is is_owner
    else:
        _same_as_missing(response, api.get(f"/api/v1/cameos/{fake}"), cid, fake)
    response = api.get("/api/v1/cameos/handles/alice")
    assert response.status_code == (200 if may_read else 404)
    if not may_read:
        missing = api.get("/api/v1/cameos/handles/nobody_here")
        _same_as_missing(response, missing, "alice", "nobody_here")

    # use
    jobs = GenerationJob.objects.count()
    response = api.post(
        "/api/v1/generations",
        {"prompt": "@alice waves hello", "seconds": 1, "size": "512x512"},
        format="json",
    )
    if may_use:
        assert response.status_code == 201, response.content
        assert GenerationJob.objects.count() == jobs + 1
    else:
        error = assert_error(response, 403, code="cameo_unavailable", param="prompt")
        missing = api.post(
            "/api/v1/generations",
            {"prompt": "@nobody_here waves hello", "seconds": 1, "size": "512x512"},
            format="json",
        )
        assert error["message"] == missing.json()["error"]["message"].replace(
            "nobody_here", "alice"
        )
        assert GenerationJob.objects.count() == jobs

    # the owner's tools: appearances, ledger, grants, settings, grant, revoke
    stranger_handle = cast["users"]["stranger"].handle
    owner_calls = [
        ("get", f"/api/v1/cameos/{cid}/appearances", None),
        ("get", f"/api/v1/cameos/{cid}/ledger", None),
        ("get", f"/api/v1/cameos/{cid}/grants", None),
        ("patch", f"/api/v1/cameos/{cid}", {"instructions": "always smiling"}),
        ("post", f"/api/v1/cameos/{cid}/grants", {"handle": stranger_handle}),
        ("post", f"/api/v1/cameos/{cid}/revoke", {"policy": "take_down"}),
    ]
    for method, path, data in owner_calls:
        response = getattr(api, method)(path, data, format="json")
        if is_owner:
            assert response.status_code in (200, 201), (path, response.content)
        else:
            missing = getattr(api, method)(path.replace(cid, fake), data, format="json")
            _same_as_missing(response, missing, cid, fake)
    if is_owner:
        cameo.refresh_from_db()
        assert cameo.status == CameoStatus.REVOKED
        assert cameo.instructions == "always smiling"
    else:
        # Denied calls changed nothing (a permitted use adds exactly its one use entry).
        status, audience_now, entries, grants = _state(cameo)
        assert (status, audience_now, grants) == (*before[:2], before[3])
        assert entries == before[2] + (1 if may_use else 0)


@pytest.mark.parametrize("role", ["owner", "approved", "stranger", "blocked", "staff"])
def test_openai_character_read_follows_the_same_rule(role):
    owner = UserFactory()
    pet = character(owner, handle="biscuit_dog")
    services.cameo_settings_update(cameo=pet, actor=owner, audience="approved")
    users = {"owner": owner, "approved": UserFactory(), "stranger": UserFactory()}
    services.grant_create(cameo=pet, grantee=users["approved"], actor=owner)
    users["blocked"] = UserFactory()
    services.grant_create(cameo=pet, grantee=users["blocked"], actor=owner)
    user_block(blocker=users["blocked"], blocked=owner)
    users["staff"] = UserFactory(is_staff=True)
    api = client_for(users[role])
    response = api.get(f"/v1/videos/characters/{pet.character_id}")
    if role in ("owner", "approved", "staff"):
        assert response.status_code == 200
        assert response.json()["id"] == pet.character_id
    else:
        fake = f"char_{uuid.uuid4().hex}"
        missing = api.get(f"/v1/videos/characters/{fake}")
        assert_error(response, 404, code="character_not_found", param="character_id")
        assert response.json()["error"]["message"] == missing.json()["error"]["message"].replace(
            fake, pet.character_id
        )
