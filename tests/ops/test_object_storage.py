"""Media on an S3-compatible object store, over real HTTP (moto's server on the loopback).

What is pinned: the environment selects the backend and a missing bucket stops start-up; media
is written, read, listed and deleted through the storage API; stored objects are private; a
clip made by the real pipeline (in this process, and by a real worker) lands in the bucket;
its links are presigned, carry the configured lifetime and download the exact bytes; the media
endpoints redirect to the store instead of streaming; a draft never gets an unsigned link, even
with a CDN host; someone else's draft is a 404; deleting a job deletes its objects.

moto does not enforce a presigned URL's signature or expiry (it serves an expired or altered
one); ``tests.ops.conftest.presigned`` checks both as S3 does, so the lifetime a URL carries is
shown to be the signed one and to be the configured TTL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import time
import uuid
from urllib.parse import urlsplit

import av
import httpx
import numpy as np
import openai
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from accounts.services import api_key_create
from generation import pipeline
from generation.apis import media_token
from generation.engines.base import RenderResult
from generation.models import Clip, ClipAudience, GenerationJob, JobStage, JobStatus
from generation.provenance.c2pa_sign import read_manifest
from tests.factories import UserFactory
from tests.fixtures import client_for, start_asgi_server, start_worker
from tests.generation.api.helpers import assert_error, upload
from tests.generation.e2e.helpers import job_of, wait_finished
from tests.generation.media.helpers import moving_clip
from tests.ops.conftest import BadSignature, presigned, settings_in_fresh_process

VARIANTS = ("video", "thumbnail", "spritesheet")
CDN = "cdn.montage.test"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _download(url: str) -> httpx.Response:
    """A plain HTTP GET, as a player or browser would make it (no credentials)."""
    return httpx.get(url, timeout=30)


def _produced_clip(user, tmp_path) -> GenerationJob:
    """A completed job whose clip the real post-processing pipeline encoded, watermarked,
    signed and stored (through the configured storage), recorded as the worker records it."""
    job = GenerationJob.objects.create(
        user=user,
        prompt="a square slides",
        model="sora-2",
        engine="previs",
        seconds=1,
        size="256x448",
        seed=1,
        params={"prompt": "a square slides"},
        params_hash="0" * 64,
        status=JobStatus.IN_PROGRESS,
        stage=JobStage.POSTPROCESSING,
    )
    result = RenderResult(
        frames=moving_clip(frames=24, width=256, height=448),
        audio=np.zeros((2, 48_000), dtype=np.float32),
        sample_rate=48_000,
        fps=24,
        camera=[{}] * 24,
        events=[],
    )
    produced = pipeline.produce(
        job=job,
        result=result,
        prefix=f"clips/{job.id.hex}/1",
        scratch=tmp_path / f"scratch-{job.id.hex}",
        on_progress=lambda fraction: None,
        should_stop=lambda: False,
    )
    Clip.objects.create(
        job=job,
        user=user,
        video=produced.video,
        thumbnail=produced.thumbnail,
        spritesheet=produced.spritesheet,
        metadata=produced.metadata,
        duration_s=produced.duration_s,
        width=256,
        height=448,
        bytes=produced.bytes,
        sha256=produced.sha256,
        manifest=produced.manifest,
        watermark=produced.watermark,
    )
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.COMPLETED, stage=JobStage.DONE, progress=100, completed_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def _assert_presigned_for(url: str, s3_server, *, key: str, ttl: int) -> None:
    """``url`` is a SigV4-presigned GET for ``key``, signed just now, living ``ttl`` seconds."""
    signed = presigned(url, s3_server)
    assert signed.key == key
    assert signed.expires_in == ttl
    assert abs((signed.signed_at - _now()).total_seconds()) < 120


# --- Settings ------------------------------------------------------------------------------


def test_the_environment_selects_the_storage_and_a_missing_bucket_stops_start_up(s3_server):
    s3 = s3_server.env()
    cases = {
        "default": ({"STORAGE_BACKEND": None}, None),
        "a dotted class path": (
            {"STORAGE_BACKEND": "django.core.files.storage.FileSystemStorage"},
            None,
        ),
        "s3": ({**s3, "S3_CUSTOM_DOMAIN": f"https://{CDN}/", "MEDIA_URL_TTL": "900"}, None),
        "s3 on the credential chain": (
            {**s3, "S3_ACCESS_KEY_ID": None, "S3_SECRET_ACCESS_KEY": None, "S3_REGION": None},
            None,
        ),
        "s3 without a bucket": (
            {**s3, "S3_BUCKET": None},
            "ImproperlyConfigured: STORAGE_BACKEND=s3 needs S3_BUCKET",
        ),
        "an unknown backend": ({"STORAGE_BACKEND": "nfs"}, "STORAGE_BACKEND must be filesystem"),
        "an unknown addressing style": (
            {**s3, "S3_ADDRESSING_STYLE": "sideways"},
            "S3_ADDRESSING_STYLE must be auto, virtual or path",
        ),
        "a CDN host given as an http URL": (
            {**s3, "S3_CUSTOM_DOMAIN": "http://cdn.example.com"},
            "S3_CUSTOM_DOMAIN is a host name",
        ),
        "a link lifetime past S3's limit": (
            {"MEDIA_URL_TTL": str(8 * 24 * 3600)},
            "MEDIA_URL_TTL must be between 1 and 604800 seconds",
        ),
    }
    procs = {
        name: settings_in_fresh_process(env, "s.STORAGES['default']")
        for name, (env, _) in cases.items()
    }
    outputs = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        refusal = cases[name][1]
        if refusal is None:
            assert proc.returncode == 0, (name, err)
            outputs[name] = json.loads(out)
        else:
            assert proc.returncode != 0 and refusal in err, (name, err)
    filesystem = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert outputs["default"] == outputs["a dotted class path"] == filesystem
    assert outputs["s3"] == {
        "BACKEND": "core.storage.S3MediaStorage",
        "OPTIONS": {
            "bucket_name": s3_server.bucket,
            "endpoint_url": s3_server.endpoint_url,
            "region_name": s3_server.region,
            "access_key": s3_server.access_key_id,
            "secret_key": s3_server.secret_access_key,
            "addressing_style": "path",
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 900,
            "public_domain": CDN,
            "file_overwrite": False,
        },
    }
    chain = outputs["s3 on the credential chain"]["OPTIONS"]
    assert (chain["access_key"], chain["secret_key"], chain["region_name"]) == (None, None, None)


# --- The storage API -----------------------------------------------------------------------


def test_default_storage_writes_reads_lists_and_deletes_objects_in_the_bucket(
    s3_server, s3_storage
):
    folder = f"ops/{uuid.uuid4().hex}"
    data = b"montage object storage\n" * 100
    name = s3_storage.save(f"{folder}/note.txt", ContentFile(data))
    assert name == f"{folder}/note.txt"
    assert s3_server.keys(folder) == [name] and s3_server.read(name) == data
    assert s3_storage.exists(name) and s3_storage.size(name) == len(data)
    with s3_storage.open(name, "rb") as handle:
        assert handle.read() == data
    # file_overwrite is off: a second object under a taken name gets a name of its own.
    other = s3_storage.save(f"{folder}/note.txt", ContentFile(b"another"))
    assert other != name and s3_server.read(name) == data and s3_server.read(other) == b"another"
    assert s3_storage.listdir(folder) == ([], sorted(n.rsplit("/", 1)[1] for n in (name, other)))
    s3_storage.delete(name)
    s3_storage.delete(other)
    assert s3_server.keys(folder) == []
    assert not s3_storage.exists(name)


def test_stored_objects_are_private(s3_server, s3_storage, settings):
    name = s3_storage.save(f"ops/{uuid.uuid4().hex}/private.bin", ContentFile(b"\x01\x02"))
    # Safety: without a signature the store refuses the object.
    assert _download(s3_server.object_url(name)).status_code == 403
    grants = s3_server.client().get_object_acl(Bucket=s3_server.bucket, Key=name)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert all(g["Grantee"]["Type"] == "CanonicalUser" for g in grants)
    # Even url() (used for avatars) presigns, with the configured lifetime.
    url = s3_storage.url(name)
    _assert_presigned_for(url, s3_server, key=name, ttl=settings.MEDIA_URL_TTL)
    assert _download(url).content == b"\x01\x02"
    s3_storage.delete(name)


# --- A real clip in the bucket ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_clip_from_the_pipeline_lands_in_the_bucket_and_its_links_download_its_exact_bytes(
    s3_server, s3_storage, settings, user, tmp_path
):
    settings.MEDIA_URL_TTL = 900
    api = client_for(user)
    job = _produced_clip(user, tmp_path)
    clip = job.clip
    names = {v: getattr(clip, v).name for v in (*VARIANTS, "metadata")}
    assert s3_server.keys(f"clips/{job.id.hex}/") == sorted(names.values())
    video = s3_server.read(names["video"])
    assert len(video) == clip.bytes and hashlib.sha256(video).hexdigest() == clip.sha256
    assert read_manifest(video, pipeline.signing_credentials().trust_anchors_pem)["state"] == (
        "trusted"
    )

    urls = api.get(f"/api/v1/generations/{job.public_id}").json()["urls"]
    assert set(urls) == set(VARIANTS)
    for variant, url in urls.items():
        # Safety: a draft's links are presigned and expire after MEDIA_URL_TTL.
        _assert_presigned_for(url, s3_server, key=names[variant], ttl=900)
        response = _download(url)
        assert response.status_code == 200
        assert response.content == s3_server.read(names[variant])
    assert _download(urls["video"]).headers["content-type"] == "video/mp4"


@pytest.mark.django_db
def test_media_endpoints_redirect_to_a_short_lived_presigned_url(
    s3_server, s3_storage, settings, user, anon_client, tmp_path
):
    settings.MEDIA_REDIRECT_TTL = 120
    api = client_for(user)
    job = _produced_clip(user, tmp_path)
    clip = job.clip
    video = s3_server.read(clip.video.name)
    requests = [
        (api, f"/v1/videos/{job.public_id}/content", {}, clip.video.name),
        (api, f"/api/v1/generations/{job.public_id}/content", {}, clip.video.name),
        (
            api,
            f"/v1/videos/{job.public_id}/content",
            {"variant": "thumbnail"},
            clip.thumbnail.name,
        ),
        # The signed media link needs no credentials; it too hands over to the store.
        (anon_client, f"/api/v1/media/{media_token(clip, 'video')}", {}, clip.video.name),
    ]
    for client, path, query, key in requests:
        response = client.get(path, query)
        assert response.status_code == 302, (path, response.content)
        assert response["Cache-Control"] == "private, no-store"
        location = response["Location"]
        _assert_presigned_for(location, s3_server, key=key, ttl=120)
        assert _download(location).content == s3_server.read(key)
    assert _download(api.get(f"/v1/videos/{job.public_id}/content")["Location"]).content == video


@pytest.mark.django_db
def test_a_presigned_lifetime_is_part_of_the_signature(
    s3_server, s3_storage, settings, user, anon_client, tmp_path, monkeypatch
):
    """The store refuses a URL after ``X-Amz-Date + X-Amz-Expires``; both are signed, so a
    holder cannot stretch a link's life. (moto itself serves expired URLs: the signature check
    here is S3's.) Montage's own signed link still expires after MEDIA_URL_TTL as before."""
    settings.MEDIA_URL_TTL = 600
    job = _produced_clip(user, tmp_path)
    url = client_for(user).get(f"/api/v1/generations/{job.public_id}").json()["urls"]["video"]
    signed = presigned(url, s3_server)
    assert signed.expires_in == 600
    assert signed.expires_at - signed.signed_at == dt.timedelta(seconds=600)
    for stretched in (
        url.replace("X-Amz-Expires=600", "X-Amz-Expires=604800"),
        url.replace(f"X-Amz-Date={signed.signed_at:%Y%m%dT%H%M%SZ}", "X-Amz-Date=20990101T000000Z"),
    ):
        assert stretched != url
        with pytest.raises(BadSignature):
            presigned(stretched, s3_server)
    token_path = f"/api/v1/media/{media_token(job.clip, 'video')}"
    later = time.time() + 601
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    assert_error(anon_client.get(token_path), 403, code="link_expired")


@pytest.mark.django_db
def test_a_draft_never_gets_an_unsigned_link_even_with_a_cdn_host(
    s3_server, s3_storages_setting, settings, user, tmp_path
):
    """With a CDN host set, only media published to everyone gets a CDN link; a draft, and a
    published clip that is held, age-restricted or for followers only, gets presigned ones."""
    default = s3_storages_setting["default"]
    settings.STORAGES = {
        **s3_storages_setting,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], "public_domain": CDN}},
    }
    api = client_for(user)
    job = _produced_clip(user, tmp_path)
    clip = job.clip

    def links():
        urls = api.get(f"/api/v1/generations/{job.public_id}").json()["urls"]
        redirect = api.get(f"/v1/videos/{job.public_id}/content")
        assert redirect.status_code == 302
        return urls, redirect["Location"]

    def assert_all_presigned():
        urls, location = links()
        for variant, url in urls.items():
            # Safety: a draft is never given an unsigned URL.
            _assert_presigned_for(
                url, s3_server, key=getattr(clip, variant).name, ttl=settings.MEDIA_URL_TTL
            )
        _assert_presigned_for(
            location, s3_server, key=clip.video.name, ttl=settings.MEDIA_REDIRECT_TTL
        )

    assert_all_presigned()
    published = {"published_at": timezone.now(), "audience": ClipAudience.PUBLIC}
    Clip.objects.filter(pk=clip.pk).update(**published)
    urls, location = links()
    assert urls == {v: f"https://{CDN}/{getattr(clip, v).name}" for v in VARIANTS}
    assert location == urls["video"]
    for restriction in (
        {"held_at": timezone.now()},
        {"age_restricted": True},
        {"audience": ClipAudience.FOLLOWERS},
        {"published_at": None, "audience": ClipAudience.ONLY_ME},
    ):
        Clip.objects.filter(pk=clip.pk).update(**{**published, **restriction})
        assert_all_presigned()
        Clip.objects.filter(pk=clip.pk).update(
            held_at=None, age_restricted=False, audience=ClipAudience.ONLY_ME, published_at=None
        )
    Clip.objects.filter(pk=clip.pk).update(removed_at=timezone.now(), removal_reason="policy")
    assert api.get(f"/api/v1/generations/{job.public_id}").json()["urls"] is None
    assert_error(
        api.get(f"/v1/videos/{job.public_id}/content"),
        404,
        code="video_not_ready",
        param="video_id",
    )


@pytest.mark.django_db
def test_another_users_draft_is_a_404_that_leaks_no_link(
    s3_server, s3_storage, user, other_user, tmp_path
):
    job = _produced_clip(user, tmp_path)
    before = s3_server.keys(f"clips/{job.id.hex}/")
    other = client_for(other_user)
    for path in (
        f"/v1/videos/{job.public_id}/content",
        f"/api/v1/generations/{job.public_id}/content",
    ):
        response = other.get(path)
        assert_error(response, 404, code="video_not_found", param="video_id")
        assert "Location" not in response
        assert s3_server.endpoint_url not in response.content.decode()
    response = other.get(f"/api/v1/generations/{job.public_id}")
    assert_error(response, 404, code="video_not_found", param="video_id")
    assert s3_server.endpoint_url not in response.content.decode()
    assert_error(
        other.delete(f"/api/v1/generations/{job.public_id}"),
        404,
        code="video_not_found",
        param="video_id",
    )
    assert s3_server.keys(f"clips/{job.id.hex}/") == before and len(before) == 4
    assert Clip.objects.filter(job=job).exists()


# --- End to end: a real worker, a real server -------------------------------------------------


def _plate() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (512, 512), (20, 160, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.timeout(600)  # two processes to start and a clip to render, on a shared machine
@pytest.mark.django_db(transaction=True)
def test_a_worker_renders_into_the_bucket_and_deleting_the_job_empties_it(
    s3_server, s3_storage, tmp_path
):
    """A real Celery worker and the real ASGI server, both on the bucket: the worker reads the
    input reference from the store and writes the clip there (its render hand-off deleted once
    done); the openai SDK's download follows the redirect to the exact bytes; deleting the job
    deletes every object it had."""
    worker = start_worker(tmp_path, name="s3", extra_env=s3_server.env())
    server, base = start_asgi_server(tmp_path, extra_env=s3_server.env())
    try:
        user = UserFactory()
        api = client_for(user)
        body = api.post(
            "/api/v1/generations",
            {
                "prompt": "a ball falls",
                "seconds": "1",
                "size": "512x512",
                "input_reference": upload("plate.png", _plate()),
            },
            format="multipart",
        ).json()
        job = job_of(body)
        reference = job.input_reference.name
        assert reference in s3_server.keys("references/")
        job = wait_finished(job, 240)
        assert job.status == JobStatus.COMPLETED, (job.error_code, job.error_message)
        clip = job.clip
        names = sorted(getattr(clip, v).name for v in (*VARIANTS, "metadata"))
        assert s3_server.keys(f"clips/{job.id.hex}/") == names
        assert s3_server.keys(f"intermediate/{job.id.hex}/") == []
        video = s3_server.read(clip.video.name)
        assert hashlib.sha256(video).hexdigest() == clip.sha256
        # The reference the worker read back from the store is the first frame.
        with av.open(io.BytesIO(video)) as container:
            first = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        assert np.abs(np.median(first.reshape(-1, 3), axis=0) - [20, 160, 60]).max() <= 6

        _, key = api_key_create(user=user, name="sdk")
        sdk = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=60)
        assert sdk.videos.download_content(job.public_id).read() == video
        urls = httpx.get(
            f"{base}/api/v1/generations/{job.public_id}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()["urls"]
        for variant, url in urls.items():
            assert urlsplit(url).netloc == urlsplit(s3_server.endpoint_url).netloc
            presigned(url, s3_server)
            assert _download(url).content == s3_server.read(getattr(clip, variant).name)

        deleted = httpx.delete(
            f"{base}/api/v1/generations/{job.public_id}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        assert s3_server.keys(f"clips/{job.id.hex}/") == []
        assert reference not in s3_server.keys("references/")
        assert not Clip.objects.filter(job_id=job.pk).exists()
    finally:
        server.stop()
        worker.stop()
