"""Request rules enforced in the generation services, whichever API calls them."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.generation.api.helpers import assert_error, generation_state

pytestmark = pytest.mark.django_db


def test_high_priority_is_for_staff_only(api):
    before = generation_state()
    response = api.post("/api/v1/generations", {"prompt": "p", "priority": "high"}, format="json")
    assert_error(response, 403, code="priority_not_allowed", param="priority")
    assert generation_state() == before
    staff = client_for(UserFactory(is_staff=True))
    created = staff.post("/api/v1/generations", {"prompt": "p", "priority": "high"}, format="json")
    assert created.status_code == 201 and created.json()["data"][0]["priority"] == 8
    low = api.post("/api/v1/generations", {"prompt": "p", "priority": "low"}, format="json")
    assert low.json()["data"][0]["priority"] == 2


@override_settings(GENERATION_MAX_PIXEL_FRAMES=720 * 1280 * 24 * 8)
def test_a_clip_too_large_to_render_is_refused(api):
    before = generation_state()
    response = api.post("/api/v1/generations", {"prompt": "p", "seconds": 12}, format="json")
    assert_error(response, 400, code="clip_too_large", param="seconds")
    assert generation_state() == before
    assert (
        api.post("/api/v1/generations", {"prompt": "p", "seconds": 8}, format="json").status_code
        == 201
    )


def test_cameo_mentions_in_storyboard_shots_are_refused_too(api, settings):
    settings.GENERATION_GATES = []  # no consent gate installed
    before = generation_state()
    response = api.post(
        "/api/v1/generations",
        {
            "prompt": "two shots",
            "storyboard": [
                {"prompt": "a beach", "seconds": 2},
                {"prompt": "@ava waves", "seconds": 2},
            ],
        },
        format="json",
    )
    assert_error(response, 403, code="cameos_unavailable", param="prompt")
    assert generation_state() == before


def test_an_email_address_is_not_a_cameo_mention(api):
    response = api.post("/v1/videos", {"prompt": "a sign reading hello@example.com"}, format="json")
    assert response.status_code == 200


def test_list_after_an_unknown_id_is_a_400(api):
    response = api.get("/v1/videos", {"after": "video_nope"})
    assert_error(response, 400, code="invalid_cursor", param="after")


def test_generations_own_characters_route_answers_404_when_no_app_serves_them(api, settings):
    """Without the cameo app (whose routes come first), characters are not a video id."""
    settings.ROOT_URLCONF = "tests.generation.api.urls_without_cameo"
    for method, path in [("post", "/v1/videos/characters"), ("get", "/v1/videos/characters/c1")]:
        assert_error(getattr(api, method)(path), 404, code="characters_unavailable")
