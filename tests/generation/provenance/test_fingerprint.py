"""Per-second PDQ fingerprints: a re-encoded, resized copy finds its clip through the band
index; unrelated clips do not; the lookup is one query whatever the index holds."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation.models import Clip, ClipFingerprint, GenerationJob
from generation.provenance.fingerprint import (
    band_codes,
    distance,
    fingerprint_frames,
    fingerprint_video,
    probes,
)
from generation.selectors import clips_matching
from generation.services import clip_fingerprints_store
from tests.factories import UserFactory, clip_row_fields

FPS = 12


def scene(seed: int, seconds: int = 3, size=(192, 108)) -> np.ndarray:
    """Moving, textured frames: a gradient, a drifting block and noise, different per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 255, (h // 12 + 1, w // 12 + 1, 3)).astype(np.float32)
    base = np.kron(base, np.ones((12, 12, 1)))[:h, :w]
    frames = []
    for t in range(seconds * FPS):
        frame = base.copy()
        x = (t * 5 + seed * 17) % (w - 40)
        frame[30:70, x : x + 40] = rng.integers(0, 255, 3)
        frames.append(np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255))
    return np.stack(frames).astype(np.uint8)


def encode(frames: np.ndarray, *, scale: float = 1.0, crf: int = 30) -> bytes:
    h, w = frames.shape[1:3]
    out_w, out_h = int(w * scale) // 2 * 2, int(h * scale) // 2 * 2
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = out_w, out_h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast"}
        for array in frames:
            frame = av.VideoFrame.from_ndarray(array, format="rgb24").reformat(out_w, out_h)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buffer.getvalue()


def test_probes_cover_every_hash_within_the_match_distance():
    rng = np.random.default_rng(3)
    digest = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
    bits = np.unpackbits(np.frombuffer(digest, np.uint8))
    flipped = bits.copy()
    flipped[rng.choice(256, 31, replace=False)] ^= 1
    near = np.packbits(flipped).tobytes()
    assert distance(digest, near) == 31
    near_bands = {(b, int(v)) for b, v in enumerate(np.frombuffer(near, ">u2"))}
    assert near_bands & set(probes(digest))


@pytest.mark.django_db
def test_a_reencoded_resized_copy_finds_its_clip_and_nothing_else():
    user = UserFactory()
    clips = {}
    for seed in (1, 2, 3):
        job = GenerationJob.objects.create(
            user=user,
            prompt="p",
            model="m",
            engine="previs",
            seconds=3,
            size="192x108",
            seed=seed,
            params={},
            params_hash="0" * 64,
        )
        clip = Clip.objects.create(
            **clip_row_fields(),
            job=job,
            user=user,
            video="v",
            thumbnail="t",
            spritesheet="s",
            metadata="m",
            duration_s=3,
            width=192,
            height=108,
            bytes=1,
            sha256="0" * 64,
        )
        frames = scene(seed)
        clips[seed] = (clip, frames)
        assert clip_fingerprints_store(clip=clip, hashes=fingerprint_frames(frames, FPS)) == 3
    stored = ClipFingerprint.objects.first()
    assert stored.bands == band_codes(bytes(stored.hash))

    copy = encode(clips[2][1], scale=0.75, crf=32)
    query = fingerprint_video(copy)
    assert len(query) == 3
    with CaptureQueriesContext(connection) as captured:
        matches = clips_matching(hashes=query)
    # One lookup statement (with its planner setting and savepoint), however many are stored.
    assert len([q for q in captured if "generation_clipfingerprint" in q["sql"]]) == 1
    assert [m["clip_id"] for m in matches] == [clips[2][0].id]
    assert matches[0]["matched_seconds"] == 3

    unrelated = fingerprint_video(encode(scene(99)))
    assert clips_matching(hashes=unrelated) == []
