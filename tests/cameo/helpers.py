"""Builders for the cameo tests: real cameos made through the services, with a real face."""

from __future__ import annotations

import io

import numpy as np
import skimage.data
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.models import Follow
from cameo import services
from cameo.models import Cameo, CameoKind, CameoStatus, LedgerEntry
from generation.models import GenerationJob


def face_crop() -> np.ndarray:
    """The head of scikit-image's astronaut photo (a real face that ships in the package)."""
    return np.ascontiguousarray(skimage.data.astronaut()[10:200, 150:305])


def person_cameo(owner, *, audience: str | None = None, **settings_) -> Cameo:
    """A verified person cameo, verified through the service (tests not about liveness)."""
    cameo = Cameo.objects.create(
        owner=owner,
        kind=CameoKind.PERSON,
        handle=owner.handle,
        name=owner.display_name,
        status=CameoStatus.PENDING,
        audience=services.default_audience(owner),
    )
    cameo = services.cameo_verified_set(cameo=cameo, actor="system", frames=[face_crop()])
    changes = dict(settings_)
    if audience is not None:
        changes["audience"] = audience
    if changes:
        cameo = services.cameo_settings_update(cameo=cameo, actor=owner, **changes)
    return cameo


def png_upload(name: str = "pet.png", color=(180, 120, 40), size=(96, 96)) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def character(owner, *, handle: str, name: str = "Biscuit") -> Cameo:
    return services.character_create(
        owner=owner, name=name, handle=handle, upload=png_upload(), rights_attested=True
    )


def befriend(a, b) -> None:
    Follow.objects.get_or_create(follower=a, followee=b)
    Follow.objects.get_or_create(follower=b, followee=a)


def generate(api, prompt: str, **extra):
    body = {"prompt": prompt, "seconds": 1, "size": "512x512", "seed": 3, **extra}
    return api.post("/api/v1/generations", body, format="json")


def job_from(response) -> GenerationJob:
    return GenerationJob.objects.get(pk=response.json()["data"][0]["id"].removeprefix("video_"))


def actions(cameo: Cameo) -> list[str]:
    return list(
        LedgerEntry.objects.filter(cameo=cameo).order_by("seq").values_list("action", flat=True)
    )
