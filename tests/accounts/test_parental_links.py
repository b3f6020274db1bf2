"""Parental links: a parent's invitation code accepted by their signed-in teen, both sides
seeing the link, only the parent changing controls, unlinking by the parent (or the teen once
an adult), the append-only history, and every denied and malformed request."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from accounts.models import (
    Notification,
    ParentalEvent,
    ParentalInvitation,
    ParentalLink,
)
from accounts.selectors import parental_controls_for
from accounts.services import user_block
from tests.accounts.helpers import years_ago
from tests.factories import TeenFactory, UserFactory
from tests.fixtures import client_for
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db

BASE = "/api/v1/accounts/parental"
DEFAULTS = {
    "personalization_off": False,
    "daily_feed_minutes": None,
    "daily_feed_items": None,
    "strangers_can_comment": True,
    "cameo_audience_max": None,
    "allow_remix": False,
}


def parental_state() -> dict:
    """Every parental row and notification, for asserting a denied request changed nothing."""
    return {
        "invitations": list(ParentalInvitation.objects.order_by("pk").values()),
        "links": list(ParentalLink.objects.order_by("pk").values()),
        "events": list(ParentalEvent.objects.order_by("pk").values()),
        "notifications": list(Notification.objects.order_by("pk").values()),
    }


def invite(parent) -> str:
    response = client_for(parent).post(f"{BASE}/invitations")
    assert response.status_code == 201, response.content
    return response.json()["code"]


def link(parent, teen) -> dict:
    response = client_for(teen).post(
        f"{BASE}/invitations/accept", {"code": invite(parent)}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def parent():
    return UserFactory()


@pytest.fixture
def teen():
    return TeenFactory()


def test_parent_invites_teen_accepts_and_both_see_the_link(parent, teen):
    created = client_for(parent).post(f"{BASE}/invitations")
    assert created.status_code == 201
    body = created.json()
    assert body["object"] == "parental.invitation" and body["id"].startswith("pinv_")
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}", body["code"])
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert abs(expires - (timezone.now() + dt.timedelta(hours=48))) < dt.timedelta(minutes=1)
    # The code is not stored, only its hash.
    invitation = ParentalInvitation.objects.get()
    assert body["code"] not in str(invitation.__dict__)

    # Typed loosely by a person: lower case, no dashes.
    typed = body["code"].replace("-", "").lower()
    accepted = client_for(teen).post(f"{BASE}/invitations/accept", {"code": typed}, format="json")
    assert accepted.status_code == 201, accepted.content
    shown = accepted.json()
    assert shown["id"].startswith("plink_")
    assert (shown["parent"], shown["teen"], shown["status"]) == (
        parent.handle,
        teen.handle,
        "active",
    )
    assert shown["controls_apply"] is True and shown["controls"] == DEFAULTS
    assert shown["revoked_at"] is None

    for person in (parent, teen):
        listing = client_for(person).get(f"{BASE}/links").json()
        assert [row["id"] for row in listing["data"]] == [shown["id"]]
        detail = client_for(person).get(f"{BASE}/links/{shown['id']}")
        assert detail.status_code == 200 and detail.json() == shown
        controls = client_for(person).get(f"{BASE}/links/{shown['id']}/controls")
        assert controls.json() == DEFAULTS
    mine = client_for(teen).get(f"{BASE}/controls").json()
    assert mine["applies"] is True and mine["controls"] == DEFAULTS
    assert [row["id"] for row in mine["links"]] == [shown["id"]]

    assert Notification.objects.filter(
        user=parent, kind="parental.link_accepted", actor=teen
    ).exists()
    events = client_for(parent).get(f"{BASE}/links/{shown['id']}/events").json()["data"]
    assert [e["action"] for e in events] == ["link_created"]
    assert events[0]["actor"] == f"user:{teen.pk}"
    assert ParentalEvent.objects.filter(action="invitation_created", parent_id=parent.pk).exists()
    invitation.refresh_from_db()
    assert invitation.used_by == teen and invitation.used_at is not None


def test_a_stranger_cannot_see_a_link(parent, teen):
    shown = link(parent, teen)
    stranger = client_for(UserFactory())
    for path in ("", "/controls", "/events"):
        response = stranger.get(f"{BASE}/links/{shown['id']}{path}")
        assert_error(response, 404, code="parental_link_not_found", param="link_id")
    assert stranger.get(f"{BASE}/links").json()["data"] == []
    assert stranger.get(f"{BASE}/controls").json() == {
        "object": "parental.controls",
        "applies": False,
        "controls": None,
        "links": [],
    }


@pytest.mark.parametrize("link_id", ["plink_nope", "nope", "plink_" + "0" * 32, "pinv_" + "0" * 32])
def test_malformed_or_unknown_link_ids_are_not_found(parent, link_id):
    response = client_for(parent).get(f"{BASE}/links/{link_id}")
    assert_error(response, 404, code="parental_link_not_found", param="link_id")


@pytest.mark.parametrize(
    "birth_date", [years_ago(15), None, years_ago(18, days=1)], ids=["teen", "unknown", "17"]
)
def test_only_adults_can_invite(birth_date):
    person = UserFactory(birth_date=birth_date)
    before = parental_state()
    response = client_for(person).post(f"{BASE}/invitations")
    assert_error(response, 403, code="parent_must_be_adult")
    assert parental_state() == before


def test_a_parent_holds_a_bounded_number_of_open_codes(parent):
    for _ in range(5):
        invite(parent)
    before = parental_state()
    assert_error(client_for(parent).post(f"{BASE}/invitations"), 409, code="too_many_invitations")
    assert parental_state() == before
    # Expired codes do not count.
    ParentalInvitation.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    invite(parent)


def test_accept_refusals_change_nothing(parent, teen):
    accept = f"{BASE}/invitations/accept"

    def refused(client, body, status, code, param=None):
        before = parental_state()
        assert_error(client.post(accept, body, format="json"), status, code=code, param=param)
        assert parental_state() == before

    code = invite(parent)
    # An adult cannot be linked as someone's teen.
    refused(client_for(UserFactory()), {"code": code}, 403, "not_a_teen")
    refused(client_for(parent), {"code": code}, 400, "cannot_link_self", "code")
    refused(client_for(teen), {"code": "AAAA-BBBB-CCCC"}, 404, "invitation_not_found", "code")
    refused(client_for(teen), {"code": "short"}, 404, "invitation_not_found", "code")
    refused(client_for(teen), {}, 400, "required", "code")
    refused(client_for(teen), {"code": "x" * 41}, 400, "max_length", "code")
    refused(client_for(teen), ["not", "an", "object"], 400, "invalid")

    ParentalInvitation.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    refused(client_for(teen), {"code": code}, 400, "invitation_expired", "code")

    fresh = invite(parent)
    assert client_for(teen).post(accept, {"code": fresh}, format="json").status_code == 201
    # Used: by the same teen or another one.
    refused(client_for(teen), {"code": fresh}, 409, "invitation_used")
    refused(client_for(TeenFactory()), {"code": fresh}, 409, "invitation_used")
    # The same parent twice.
    refused(client_for(teen), {"code": invite(parent)}, 409, "already_linked")


def test_a_teen_has_at_most_two_parents(teen):
    first, second, third = UserFactory(), UserFactory(), UserFactory()
    link(first, teen)
    link(second, teen)
    code = invite(third)
    before = parental_state()
    response = client_for(teen).post(f"{BASE}/invitations/accept", {"code": code}, format="json")
    assert_error(response, 409, code="parent_limit_reached")
    assert parental_state() == before
    assert parental_controls_for(teen).parent_ids == {first.pk, second.pk}


def test_a_block_either_way_hides_the_code(parent, teen):
    code = invite(parent)
    user_block(blocker=teen, blocked=parent)
    response = client_for(teen).post(f"{BASE}/invitations/accept", {"code": code}, format="json")
    assert_error(response, 404, code="invitation_not_found", param="code")
    assert not ParentalLink.objects.exists()


def test_only_the_parent_changes_controls_and_every_change_is_recorded(parent, teen):
    shown = link(parent, teen)
    url = f"{BASE}/links/{shown['id']}/controls"
    change = {
        "daily_feed_minutes": 45,
        "personalization_off": True,
        "cameo_audience_max": "approved",
    }

    before = parental_state()
    assert_error(client_for(teen).patch(url, change, format="json"), 403, code="parent_only")
    stranger = client_for(UserFactory())
    assert_error(
        stranger.patch(url, change, format="json"),
        404,
        code="parental_link_not_found",
        param="link_id",
    )
    assert parental_state() == before

    response = client_for(parent).patch(url, change, format="json")
    assert response.status_code == 200, response.content
    expected = DEFAULTS | change
    assert response.json() == expected
    assert client_for(teen).get(url).json() == expected
    mine = client_for(teen).get(f"{BASE}/controls").json()
    assert mine["controls"] == expected

    event = ParentalEvent.objects.get(action="controls_changed")
    assert event.actor == f"user:{parent.pk}"
    assert event.detail == {
        "changes": {
            "daily_feed_minutes": {"from": None, "to": 45},
            "personalization_off": {"from": False, "to": True},
            "cameo_audience_max": {"from": None, "to": "approved"},
        }
    }
    note = Notification.objects.get(user=teen, kind="parental.controls_changed")
    assert note.data["changed"] == [
        "cameo_audience_max",
        "daily_feed_minutes",
        "personalization_off",
    ]

    # Back to the platform's default; an unchanged value records nothing.
    client_for(parent).patch(url, {"daily_feed_minutes": None}, format="json")
    client_for(parent).patch(url, {"personalization_off": True}, format="json")
    assert ParentalEvent.objects.filter(action="controls_changed").count() == 2
    assert client_for(teen).get(url).json()["daily_feed_minutes"] is None


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"daily_feed_minutes": 0}, "min_value", "daily_feed_minutes"),
        ({"daily_feed_minutes": 1440}, "max_value", "daily_feed_minutes"),
        ({"daily_feed_minutes": "an hour"}, "invalid", "daily_feed_minutes"),
        ({"daily_feed_items": 0}, "min_value", "daily_feed_items"),
        # The platform gives teens 50 items a day here: a parent may only tighten it.
        ({"daily_feed_items": 51}, "limit_not_tighter", "daily_feed_items"),
        ({"cameo_audience_max": "everyone"}, "invalid_choice", "cameo_audience_max"),
        ({"personalization_off": "maybe"}, "invalid", "personalization_off"),
        ({"strangers_can_comment": None}, "null", "strangers_can_comment"),
        ({"bedtime": "21:00"}, "unknown_field", "bedtime"),
    ],
)
def test_malformed_controls_are_refused(settings, parent, teen, body, code, param):
    settings.FEED_TEEN_DAILY_ITEMS = 50
    shown = link(parent, teen)
    before = parental_state()
    response = client_for(parent).patch(f"{BASE}/links/{shown['id']}/controls", body, format="json")
    assert_error(response, 400, code=code, param=param)
    assert parental_state() == before


def test_two_parents_the_strictest_of_each_control_applies(teen):
    mother, father = UserFactory(), UserFactory()
    first, second = link(mother, teen), link(father, teen)
    client_for(mother).patch(
        f"{BASE}/links/{first['id']}/controls",
        {"daily_feed_minutes": 60, "cameo_audience_max": "mutuals", "allow_remix": True},
        format="json",
    )
    client_for(father).patch(
        f"{BASE}/links/{second['id']}/controls",
        {"daily_feed_minutes": 90, "daily_feed_items": 40, "cameo_audience_max": "only_me"},
        format="json",
    )
    mine = client_for(teen).get(f"{BASE}/controls").json()
    assert mine["controls"] == DEFAULTS | {
        "daily_feed_minutes": 60,
        "daily_feed_items": 40,
        "cameo_audience_max": "only_me",
        # The father left remixing at the link's default (off).
        "allow_remix": False,
    }
    # Each parent changes only their own link.
    response = client_for(mother).patch(
        f"{BASE}/links/{second['id']}/controls", {"allow_remix": True}, format="json"
    )
    assert_error(response, 404, code="parental_link_not_found", param="link_id")


def test_unlinking_takes_the_parent_until_the_teen_is_an_adult(parent, teen):
    shown = link(parent, teen)
    revoke = f"{BASE}/links/{shown['id']}/revoke"
    before = parental_state()
    assert_error(client_for(teen).post(revoke), 403, code="teen_cannot_unlink")
    assert_error(
        client_for(UserFactory()).post(revoke),
        404,
        code="parental_link_not_found",
        param="link_id",
    )
    assert parental_state() == before

    response = client_for(parent).post(revoke)
    assert response.status_code == 200
    assert response.json()["status"] == "revoked" and response.json()["controls_apply"] is False
    assert parental_controls_for(teen) is None
    assert Notification.objects.filter(user=teen, kind="parental.link_revoked").exists()
    # Again: nothing more happens.
    assert client_for(parent).post(revoke).status_code == 200
    assert ParentalEvent.objects.filter(action="link_revoked").count() == 1
    # A removed link's controls cannot change; the history stays readable to both.
    assert_error(
        client_for(parent).patch(
            f"{BASE}/links/{shown['id']}/controls", {"allow_remix": True}, format="json"
        ),
        409,
        code="link_revoked",
    )
    history = client_for(teen).get(f"{BASE}/links/{shown['id']}/events").json()["data"]
    assert [e["action"] for e in history] == ["link_created", "link_revoked"]
    # The pair may link again later, by a new code.
    assert link(parent, teen)["status"] == "active"


def test_controls_end_when_the_teen_turns_eighteen_and_then_the_teen_may_unlink(parent, teen):
    shown = link(parent, teen)
    client_for(parent).patch(
        f"{BASE}/links/{shown['id']}/controls", {"personalization_off": True}, format="json"
    )
    assert parental_controls_for(teen) is not None
    teen.birth_date = years_ago(18)  # the eighteenth birthday is today
    teen.save(update_fields=["birth_date"])
    assert parental_controls_for(teen) is None
    detail = client_for(teen).get(f"{BASE}/links/{shown['id']}").json()
    assert detail["status"] == "active" and detail["controls_apply"] is False
    assert client_for(teen).get(f"{BASE}/controls").json()["applies"] is False
    response = client_for(teen).post(f"{BASE}/links/{shown['id']}/revoke")
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    assert ParentalEvent.objects.get(action="link_revoked").detail == {"by": "teen"}


def test_endpoints_need_authentication(anon_client):
    for method, path in [
        ("post", f"{BASE}/invitations"),
        ("post", f"{BASE}/invitations/accept"),
        ("get", f"{BASE}/links"),
        ("get", f"{BASE}/links/plink_x"),
        ("post", f"{BASE}/links/plink_x/revoke"),
        ("patch", f"{BASE}/links/plink_x/controls"),
        ("get", f"{BASE}/links/plink_x/events"),
        ("get", f"{BASE}/controls"),
    ]:
        response = getattr(anon_client, method)(path, {}, format="json")
        assert_error(response, 401, code="not_authenticated")


def test_the_history_is_append_only_in_the_database(parent, teen):
    link(parent, teen)
    event = ParentalEvent.objects.get(action="link_created")
    for attempt in (
        lambda: ParentalEvent.objects.filter(pk=event.pk).update(actor="someone else"),
        lambda: ParentalEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    event.refresh_from_db()
    assert event.actor == f"user:{teen.pk}"
