"""Draft media: only the owner downloads it; signed links work without a header, expire, and
die with the clip."""

from __future__ import annotations

import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from generation.models import Clip, GenerationJob, JobStage, JobStatus
from tests.factories import clip_row_fields
from tests.fixtures import client_for
from tests.generation.api.helpers import assert_error

pytestmark = pytest.mark.django_db

VIDEO = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64


def _completed(api) -> GenerationJob:
    body = api.post(
        "/api/v1/generations", {"prompt": "p", "seconds": 1, "size": "512x512"}, format="json"
    )
    job = GenerationJob.objects.get(pk=body.json()["data"][0]["id"].removeprefix("video_"))
    names = {
        kind: default_storage.save(f"clips/{job.id.hex}/1/{kind}", ContentFile(data))
        for kind, data in [
            ("video.mp4", VIDEO),
            ("thumbnail.webp", b"RIFF0000WEBP"),
            ("spritesheet.jpg", b"\xff\xd8\xff"),
            ("metadata.json", b"{}"),
        ]
    }
    Clip.objects.create(
        **clip_row_fields(),
        job=job,
        user=job.user,
        video=names["video.mp4"],
        thumbnail=names["thumbnail.webp"],
        spritesheet=names["spritesheet.jpg"],
        metadata=names["metadata.json"],
        duration_s=1,
        width=512,
        height=512,
        bytes=len(VIDEO),
        sha256="0" * 64,
    )
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.COMPLETED, stage=JobStage.DONE, progress=100, completed_at=timezone.now()
    )
    return job


def test_owner_downloads_every_variant_and_others_get_404(api, other_user):
    job = _completed(api)
    video = api.get(f"/v1/videos/{job.public_id}/content")
    assert video.status_code == 200 and video["Content-Type"] == "video/mp4"
    assert b"".join(video.streaming_content) == VIDEO
    thumb = api.get(f"/v1/videos/{job.public_id}/content", {"variant": "thumbnail"})
    assert thumb["Content-Type"] == "image/webp"
    other = client_for(other_user)
    response = other.get(f"/v1/videos/{job.public_id}/content")
    assert_error(response, 404, code="video_not_found", param="video_id")


def test_signed_links_serve_without_credentials_then_expire(api, anon_client, monkeypatch):
    job = _completed(api)
    urls = api.get(f"/api/v1/generations/{job.public_id}").json()["urls"]
    assert set(urls) == {"video", "thumbnail", "spritesheet"}
    path = urls["video"].split("testserver", 1)[1]
    response = anon_client.get(path)
    assert response.status_code == 200 and b"".join(response.streaming_content) == VIDEO
    assert_error(anon_client.get(path[:-3] + "xyz"), 404, code="media_not_found")
    later = time.time() + 3601
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    assert_error(anon_client.get(path), 403, code="link_expired")


def test_a_removed_clip_is_gone_from_every_url(api, anon_client):
    job = _completed(api)
    path = (
        api.get(f"/api/v1/generations/{job.public_id}")
        .json()["urls"]["video"]
        .split("testserver", 1)[1]
    )
    Clip.objects.filter(job=job).update(removed_at=timezone.now(), removal_reason="policy")
    assert_error(anon_client.get(path), 404, code="media_not_found")
    assert_error(
        api.get(f"/v1/videos/{job.public_id}/content"),
        404,
        code="video_not_ready",
        param="video_id",
    )
