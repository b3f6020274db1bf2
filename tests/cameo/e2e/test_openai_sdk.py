"""Characters through the official ``openai`` SDK against a live server."""

from __future__ import annotations

import io

import openai
import pytest
from PIL import Image

from accounts.services import api_key_create
from cameo.models import Cameo
from tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _client(base: str, handle: str) -> openai.OpenAI:
    _, key = api_key_create(user=UserFactory(handle=handle), name="sdk")
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=60)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 80), (240, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_create_and_get_character_with_the_sdk(cameo_server):
    owner = _client(cameo_server, "sdk_owner")
    picture = ("duck.png", _png(), "image/png")
    with pytest.raises(openai.BadRequestError) as refused:
        owner.videos.create_character(name="Rubber Duck", video=picture)
    assert refused.value.body["code"] == "rights_not_attested"
    assert not Cameo.objects.exists()

    made = owner.videos.create_character(
        name="Rubber Duck", video=picture, extra_body={"rights_attested": "true"}
    )
    assert made.id.startswith("char_") and made.name == "Rubber Duck" and made.created_at > 0
    fetched = owner.videos.get_character(made.id)
    assert (fetched.id, fetched.name, fetched.created_at) == (made.id, made.name, made.created_at)

    # A stranger cannot tell it from a character that does not exist (audience: mutuals).
    stranger = _client(cameo_server, "sdk_stranger")
    with pytest.raises(openai.NotFoundError) as hidden:
        stranger.videos.get_character(made.id)
    assert hidden.value.body["code"] == "character_not_found"
