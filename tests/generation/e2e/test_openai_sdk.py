"""The official ``openai`` SDK against a live server with real workers and the previs engine.

Every method of ``client.videos`` is called. Characters (``create_character`` /
``get_character``) are served by the cameo app (tests/cameo/e2e/test_openai_sdk.py covers
them); here, only that a character needs its rights attested and an unknown one is a 404.
"""

from __future__ import annotations

import io
import json

import av
import numpy as np
import openai
import pytest
from django.conf import settings
from PIL import Image

from accounts.services import api_key_create
from generation.models import Clip, GenerationJob
from generation.provenance.c2pa_sign import read_manifest
from generation.provenance.fingerprint import fingerprint_video
from generation.provenance.watermark import decode as decode_watermark
from generation.selectors import clips_matching
from tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def client(montage_server, generation_worker):
    user = UserFactory(handle="sdkuser")
    _, key = api_key_create(user=user, name="sdk")
    return openai.OpenAI(base_url=f"{montage_server}/v1", api_key=key, max_retries=0, timeout=120)


def _frames(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _decode(data: bytes):
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        frames = sum(1 for _ in container.decode(video))
        return video.codec_context.name, audio.codec_context.name, frames, video.width, video.height


def test_every_videos_method_through_the_sdk(client):
    video = client.videos.create_and_poll(
        prompt='a red ball bouncing on a beach at sunset, someone says "what a lovely evening"',
        model="sora-2",
        seconds="4",
        size="720x1280",
        poll_interval_ms=250,
    )
    assert video.status == "completed", video.error
    assert video.progress == 100 and video.seconds == "4" and video.size == "720x1280"
    assert video.model == "sora-2" and video.completed_at >= video.created_at

    retrieved = client.videos.retrieve(video.id)
    assert retrieved.id == video.id and retrieved.status == "completed"

    content = client.videos.download_content(video.id)
    data = content.read()
    assert data[4:8] == b"ftyp"
    assert _decode(data) == ("h264", "aac", 96, 720, 1280)
    manifest = read_manifest(data)
    assert manifest["state"] in ("valid", "trusted")
    created = [a for a in manifest["actions"] if a["action"] == "c2pa.created"]
    assert created and created[0]["digitalSourceType"].endswith("trainedAlgorithmicMedia")
    job = GenerationJob.objects.get()
    assert manifest["job"]["job_id"] == video.id
    assert manifest["job"]["params_hash"]["value"] == job.params_hash
    clip = Clip.objects.get(job=job)
    assert clip.sha256
    # Every clip is fingerprinted; the downloaded file finds its own clip through the index.
    assert clip.fingerprints.count() == 4
    matches = clips_matching(hashes=fingerprint_video(data))
    assert matches[0]["clip_id"] == clip.id and matches[0]["matched_seconds"] == 4
    # The invisible mark in the pixels names the clip, and the manifest binds it softly.
    decoded = decode_watermark(_frames(data), settings.GENERATION_WATERMARK_KEY.encode())
    assert decoded.payload is not None and decoded.payload == bytes(clip.watermark)
    labels = [a["label"] for a in manifest["active_manifest"]["assertions"]]
    assert "c2pa.soft-binding" in labels

    thumbnail = client.videos.download_content(video.id, variant="thumbnail").read()
    with Image.open(io.BytesIO(thumbnail)) as image:
        assert image.size == (720, 1280)
    sheet = client.videos.download_content(video.id, variant="spritesheet").read()
    with Image.open(io.BytesIO(sheet)) as image:
        assert image.width > 0

    remix = client.videos.remix(video.id, prompt="a blue ball bouncing on a beach at sunset")
    assert remix.remixed_from_video_id == video.id and remix.status == "queued"
    remix = client.videos.poll(remix.id, poll_interval_ms=250)
    assert remix.status == "completed", remix.error

    # The SDK sends ``video`` as a file for extensions and edits: the clip's own signed
    # manifest tells the server which video it is.
    clip_file = ("clip.mp4", data, "video/mp4")
    extension = client.videos.extend(prompt="the ball rolls away", seconds="4", video=clip_file)
    assert extension.seconds == "8" and extension.remixed_from_video_id == video.id
    edit = client.videos.edit(prompt="make the ball green", video=clip_file)
    assert edit.remixed_from_video_id == video.id
    for job in (extension, edit):
        assert client.videos.poll(job.id, poll_interval_ms=250).status == "completed"

    first_page = client.videos.list(limit=2)
    assert [v.id for v in first_page.data] == [edit.id, extension.id]
    assert first_page.has_more is True and first_page.last_id == extension.id
    everything = [v.id for v in client.videos.list(limit=2)]  # iterating walks every page
    assert everything == [edit.id, extension.id, remix.id, video.id]

    deleted = client.videos.delete(remix.id)
    assert deleted.deleted is True and deleted.id == remix.id
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(remix.id)

    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create_character(name="Rex", video=("rex.mp4", data, "video/mp4"))
    assert bad.value.body["code"] == "rights_not_attested"
    with pytest.raises(openai.NotFoundError):
        client.videos.get_character("char_123")

    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="x", size="640x480")
    assert bad.value.body["code"] == "invalid_size"
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.edit(prompt="x", video=("other.mp4", b"not a clip", "video/mp4"))
    assert bad.value.body["code"] == "unknown_video"


def test_the_edit_changed_what_the_clip_shows(client):
    """The edit re-reads the scene with the instruction last: the ball turns green."""
    video = client.videos.create_and_poll(prompt="a red ball bouncing in a studio", seconds="4")
    data = client.videos.download_content(video.id).read()
    edit = client.videos.edit(prompt="make the ball green", video=("clip.mp4", data, "video/mp4"))
    edit = client.videos.poll(edit.id, poll_interval_ms=250)
    assert edit.status == "completed"
    plans = {job.public_id: job.plan for job in GenerationJob.objects.all()}
    original = next(o for o in plans[video.id]["objects"] if o["label"] == "ball")["color"]
    edited = next(o for o in plans[edit.id]["objects"] if o["label"] == "ball")["color"]
    assert original[0] > original[1] and edited[1] > edited[0], json.dumps([original, edited])
    assert np.argmax(edited) == 1
