"""Through the API with a real worker: the input_reference becomes the first frame."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from generation.models import JobStatus
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.generation.api.helpers import upload
from tests.generation.e2e.helpers import job_of, wait_finished

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_input_reference_is_the_first_frame(generation_worker):
    api = client_for(UserFactory())
    buffer = io.BytesIO()
    Image.new("RGB", (512, 512), (20, 160, 60)).save(buffer, format="PNG")
    body = api.post(
        "/api/v1/generations",
        {
            "prompt": "a ball falls",
            "seconds": "1",
            "size": "512x512",
            "input_reference": upload("plate.png", buffer.getvalue()),
        },
        format="multipart",
    ).json()
    job = wait_finished(job_of(body), 120)
    assert job.status == JobStatus.COMPLETED
    with job.clip.video.open("rb") as handle, av.open(io.BytesIO(handle.read())) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    # The watermark covers a small corner of the frame; the plate's colour fills the rest.
    median = np.median(first.reshape(-1, 3), axis=0)
    assert np.abs(median - [20, 160, 60]).max() <= 6, median
