"""PATCH /api/v1/me and PUT /api/v1/me/avatar."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from accounts.models import User
from tests.accounts.helpers import accounts_state, assert_error, image_bytes, years_ago
from tests.factories import UserFactory
from tests.fixtures import client_for

ME = "/api/v1/me"
AVATAR = "/api/v1/me/avatar"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def upload(data: bytes, name: str = "me.png", content_type: str = "image/png"):
    return {"avatar": SimpleUploadedFile(name, data, content_type=content_type)}


def test_patch_me_changes_display_name_and_bio(api, user):
    response = api.patch(ME, {"display_name": "New Name", "bio": "I make clips."}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["display_name"] == "New Name"
    assert body["bio"] == "I make clips."
    user.refresh_from_db()
    assert (user.display_name, user.bio) == ("New Name", "I make clips.")


def test_patch_me_leaves_fields_it_was_not_given(api, user):
    User.objects.filter(pk=user.pk).update(bio="Old bio")

    response = api.patch(ME, {"display_name": "Only This"}, format="json")

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert (user.display_name, user.bio) == ("Only This", "Old bio")


def test_patch_me_ignores_fields_that_are_not_self_editable(api, user):
    response = api.patch(ME, {"handle": "stolen", "is_staff": True}, format="json")

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.handle != "stolen"
    assert user.is_staff is False


def test_patch_me_with_a_too_long_bio_is_refused_and_changes_nothing(api):
    before = accounts_state()

    response = api.patch(ME, {"display_name": "Fine", "bio": "x" * 301}, format="json")

    assert_error(response, 400, code="max_length", param="bio")
    assert accounts_state() == before


def test_a_birth_date_once_set_is_locked(api, user):
    before = accounts_state()

    response = api.patch(ME, {"display_name": "Sneaky", "birth_date": "1970-01-01"}, format="json")

    error = assert_error(response, 403, code="birth_date_locked", param="birth_date")
    assert error["message"] == "Your birth date can only be changed by support."
    assert accounts_state() == before
    user.refresh_from_db()
    assert user.birth_date == dt.date(1990, 1, 1)
    assert user.display_name != "Sneaky"


def test_a_teen_cannot_make_themselves_an_adult(teen):
    client = client_for(teen)
    before = accounts_state()

    response = client.patch(ME, {"birth_date": "1990-01-01"}, format="json")

    assert_error(response, 403, code="birth_date_locked", param="birth_date")
    assert accounts_state() == before
    assert client.get(ME).json()["age_band"] == "teen"


def test_a_missing_birth_date_can_be_set_once(db):
    user = UserFactory(birth_date=None)
    client = client_for(user)
    assert client.get(ME).json()["age_band"] == "teen"

    response = client.patch(ME, {"birth_date": "1990-01-01"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["age_band"] == "adult"
    second = client.patch(ME, {"birth_date": "1980-01-01"}, format="json")
    assert_error(second, 403, code="birth_date_locked", param="birth_date")
    user.refresh_from_db()
    assert user.birth_date == dt.date(1990, 1, 1)


def test_setting_a_birth_date_under_the_minimum_age_is_forbidden(db):
    user = UserFactory(birth_date=None)
    client = client_for(user)
    before = accounts_state()

    response = client.patch(ME, {"birth_date": years_ago(12).isoformat()}, format="json")

    assert_error(response, 403, code="under_minimum_age", param="birth_date")
    assert accounts_state() == before


def test_setting_a_future_birth_date_is_invalid(db):
    user = UserFactory(birth_date=None)
    client = client_for(user)
    before = accounts_state()
    tomorrow = timezone.localdate() + dt.timedelta(days=1)

    response = client.patch(ME, {"birth_date": tomorrow.isoformat()}, format="json")

    assert_error(response, 400, code="invalid_birth_date", param="birth_date")
    assert accounts_state() == before


def test_patch_me_needs_credentials(anon_client, user):
    before = accounts_state()

    response = anon_client.patch(ME, {"display_name": "x"}, format="json")

    assert_error(response, 401, code="not_authenticated")
    assert accounts_state() == before


def stored_avatar(user: User) -> Image.Image:
    user.refresh_from_db()
    with user.avatar.open("rb") as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image


def test_avatar_upload_stores_the_image_and_answers_its_url(api, user, _media_root):
    response = api.put(AVATAR, upload(image_bytes((64, 48))), format="multipart")

    assert response.status_code == 200, response.content
    url = response.json()["avatar_url"]
    assert re.fullmatch(rf"/media/avatars/{user.pk}-[0-9a-f]{{8}}\.jpg", url), url
    image = stored_avatar(user)
    assert (image.format, image.size) == ("JPEG", (64, 48))
    assert (_media_root / user.avatar.name).is_file()
    assert api.get(ME).json()["avatar_url"] == url


def test_avatar_with_transparency_stays_png(api, user):
    data = image_bytes((32, 32), mode="RGBA", color=(0, 0, 0, 0))

    response = api.put(AVATAR, upload(data), format="multipart")

    assert response.status_code == 200, response.content
    assert response.json()["avatar_url"].endswith(".png")
    image = stored_avatar(user)
    assert (image.format, image.mode, image.getpixel((0, 0))) == ("PNG", "RGBA", (0, 0, 0, 0))


def test_avatar_is_shrunk_to_at_most_1024_on_a_side(api, user):
    response = api.put(AVATAR, upload(image_bytes((2048, 1024))), format="multipart")

    assert response.status_code == 200, response.content
    assert stored_avatar(user).size == (1024, 512)


def test_avatar_metadata_such_as_gps_is_not_kept(api, user):
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPSInfo
    data = image_bytes((40, 30), fmt="JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).getexif()

    response = api.put(AVATAR, upload(data, "me.jpg", "image/jpeg"), format="multipart")

    assert response.status_code == 200, response.content
    image = stored_avatar(user)
    assert dict(image.getexif()) == {}
    assert "exif" not in image.info


def test_avatar_follows_the_exif_orientation(api, user):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    data = image_bytes((40, 20), fmt="JPEG", exif=exif.tobytes())

    response = api.put(AVATAR, upload(data, "me.jpg", "image/jpeg"), format="multipart")

    assert response.status_code == 200, response.content
    assert stored_avatar(user).size == (20, 40)


def test_replacing_the_avatar_deletes_the_old_file_after_commit(
    api, user, _media_root, django_capture_on_commit_callbacks
):
    assert api.put(AVATAR, upload(image_bytes()), format="multipart").status_code == 200
    user.refresh_from_db()
    old = _media_root / user.avatar.name

    with django_capture_on_commit_callbacks(execute=True):
        response = api.put(AVATAR, upload(image_bytes((10, 10))), format="multipart")

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert not old.exists()
    assert (_media_root / user.avatar.name).is_file()


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"this is not an image at all", "me.png"),
        (image_bytes()[:60], "truncated.png"),
        (b"GIF89a" + b"\x00" * 40, "broken.gif"),
    ],
)
def test_a_non_image_avatar_is_refused_and_changes_nothing(api, data, name, _media_root):
    before = accounts_state()

    response = api.put(AVATAR, upload(data, name), format="multipart")

    assert_error(response, 400, code="invalid_image", param="avatar")
    assert accounts_state() == before
    assert not (_media_root / "avatars").exists()


def test_an_image_format_outside_the_list_is_refused(api):
    before = accounts_state()

    response = api.put(AVATAR, upload(image_bytes(fmt="BMP"), "me.bmp"), format="multipart")

    error = assert_error(response, 400, code="invalid_image", param="avatar")
    assert error["message"] == "Avatars must be PNG, JPEG, WebP or GIF."
    assert accounts_state() == before


def test_an_avatar_with_huge_dimensions_is_refused_before_decoding(api):
    before = accounts_state()
    # 1-bit PNG: 8000x8000 pixels in a few kilobytes.
    out = io.BytesIO()
    Image.new("1", (8000, 8000)).save(out, format="PNG")

    response = api.put(AVATAR, upload(out.getvalue()), format="multipart")

    error = assert_error(response, 400, code="invalid_image", param="avatar")
    assert "8000x8000" in error["message"]
    assert accounts_state() == before


def test_a_too_large_avatar_gets_413_and_changes_nothing(api, settings, _media_root):
    data = image_bytes((64, 64))
    settings.MAX_AVATAR_BYTES = len(data) - 1
    before = accounts_state()

    response = api.put(AVATAR, upload(data), format="multipart")

    error = assert_error(response, 413, code="request_too_large", param="avatar")
    assert error["message"] == f"An avatar may be at most {len(data) - 1} bytes."
    assert accounts_state() == before
    assert not (_media_root / "avatars").exists()


def test_a_too_large_non_image_still_gets_413(api, settings):
    settings.MAX_AVATAR_BYTES = 10

    response = api.put(AVATAR, upload(b"x" * 11, "big.bin"), format="multipart")

    assert_error(response, 413, code="request_too_large", param="avatar")


def test_an_avatar_upload_without_a_file_names_the_field(api):
    response = api.put(AVATAR, {}, format="multipart")

    assert_error(response, 400, code="required", param="avatar")


def test_an_empty_avatar_file_is_refused(api):
    response = api.put(AVATAR, upload(b""), format="multipart")

    assert_error(response, 400, code="empty", param="avatar")
