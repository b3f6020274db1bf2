"""The provenance invariant: no clip exists, by any code path, without a signed manifest that
reads back as valid and without the invisible watermark."""

from __future__ import annotations

import io
import shutil

import av
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from generation import pipeline
from generation.engines.base import RenderResult
from generation.models import Clip, GenerationJob, JobStage, JobStatus
from generation.provenance.c2pa_sign import read_manifest
from generation.provenance.watermark import decode
from tests.factories import UserFactory, clip_row_fields
from tests.generation.media.helpers import moving_clip

pytestmark = pytest.mark.django_db


def _job() -> GenerationJob:
    return GenerationJob.objects.create(
        user=UserFactory(),
        prompt="a ball",
        model="sora-2",
        engine="previs",
        seconds=1,
        size="256x448",
        seed=1,
        params={"prompt": "a ball"},
        params_hash="0" * 64,
        status=JobStatus.IN_PROGRESS,
        stage=JobStage.POSTPROCESSING,
    )


def _render() -> RenderResult:
    frames = moving_clip(frames=24, width=256, height=448)
    return RenderResult(
        frames=frames,
        audio=np.zeros((2, 48_000), dtype=np.float32),
        sample_rate=48_000,
        fps=24,
        camera=[{}] * 24,
        events=[],
    )


def _produce(job, tmp_path):
    return pipeline.produce(
        job=job,
        result=_render(),
        prefix=f"clips/{job.id.hex}/1",
        scratch=tmp_path / "scratch",
        on_progress=lambda fraction: None,
        should_stop=lambda: False,
    )


def _stored(job) -> list[str]:
    try:
        return default_storage.listdir(f"clips/{job.id.hex}/1")[1]
    except FileNotFoundError:
        return []


def test_a_produced_clip_is_signed_and_carries_its_watermark(tmp_path, settings):
    job = _job()
    produced = _produce(job, tmp_path)
    with default_storage.open(produced.video, "rb") as handle:
        data = handle.read()
    assert (
        read_manifest(data, pipeline.signing_credentials().trust_anchors_pem)["state"] == "trusted"
    )
    with av.open(io.BytesIO(data)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decode(frames, settings.GENERATION_WATERMARK_KEY.encode()).payload == produced.watermark


def test_frames_whose_watermark_did_not_take_never_reach_encoding(tmp_path, monkeypatch):
    job = _job()
    monkeypatch.setattr(pipeline, "embed_watermark", lambda frames, payload, key: frames)
    with pytest.raises(pipeline.WatermarkMissing):
        _produce(job, tmp_path)
    assert _stored(job) == []


def test_an_output_that_is_not_signed_is_never_stored(tmp_path, monkeypatch):
    job = _job()
    monkeypatch.setattr(
        pipeline, "sign_mp4", lambda source, dest, **kwargs: shutil.copyfile(source, dest)
    )
    with pytest.raises(pipeline.SigningFailed):
        _produce(job, tmp_path)
    assert _stored(job) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"manifest": {}, "watermark": b"\x01" * 8},
        {"manifest": {"state": "absent"}, "watermark": b"\x02" * 8},
        {"manifest": {"state": "invalid"}, "watermark": b"\x03" * 8},
        {"manifest": {"state": "trusted"}, "watermark": None},
    ],
    ids=["no manifest", "manifest absent", "manifest invalid", "no watermark"],
)
def test_the_database_refuses_a_clip_row_that_is_unsigned_or_unwatermarked(fields):
    job = _job()
    with pytest.raises(IntegrityError), transaction.atomic():
        Clip.objects.create(
            job=job,
            user=job.user,
            duration_s=1,
            width=256,
            height=448,
            bytes=1,
            sha256="0",
            **fields,
        )
    Clip.objects.create(
        job=job, user=job.user, duration_s=1, width=256, height=448, bytes=1, sha256="0",
        **clip_row_fields(),
    )  # fmt: skip
