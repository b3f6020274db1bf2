"""Builders and assertions for the generation API tests."""

from __future__ import annotations

import io

from PIL import Image

from generation.models import Clip, GenerationJob, JobAttempt, JobEvent
from tests.support.errors import assert_error


def png_bytes(size=(64, 96), color=(200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(name: str, data: bytes, content_type: str = "image/png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


def generation_state() -> dict[str, int]:
    return {
        "jobs": GenerationJob.objects.count(),
        "attempts": JobAttempt.objects.count(),
        "events": JobEvent.objects.count(),
        "clips": Clip.objects.count(),
    }


__all__ = ["assert_error"]
