"""Invisible watermark: the payload comes back after a lossless round trip, real H.264
re-encodes (CRF 23 and 35), a half-size downscale, a 2 s trim and a crop; another key reads
nothing; the mark costs no more than 38 dB of PSNR."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from generation.media.encode import EncodeSettings, encode_mp4
from generation.provenance import watermark

KEY = b"test-watermark-key"
PAYLOAD = watermark.clip_payload("clip-0001")
FPS = 24


def textured_clip(seconds: int = 2, height: int = 360, width: int = 640) -> np.ndarray:
    """Moving gradients, moving discs and grain: content the codec must work on."""
    rng = np.random.default_rng(3)
    count = seconds * FPS
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for t in range(count):
        frame = np.stack(
            [
                128 + 80 * np.sin((xx + 5 * t) / 60.0),
                128 + 80 * np.sin((yy - 3 * t) / 45.0 + 1.0),
                128 + 60 * np.sin((xx + yy + 4 * t) / 90.0),
            ],
            axis=-1,
        )
        for k in range(4):
            cy = height * (0.5 + 0.35 * np.sin(0.1 * t + k))
            cx = width * (0.5 + 0.4 * np.cos(0.07 * t + 2 * k))
            frame[(yy - cy) ** 2 + (xx - cx) ** 2 < (25 + 10 * k) ** 2] = 40 + 50 * k
        frame += rng.normal(0, 3, size=(height, width, 1))
        frames[t] = np.clip(frame, 0, 255)
    return frames


def reencode(frames: np.ndarray, tmp_path, crf: int) -> np.ndarray:
    path = tmp_path / f"clip-{crf}.mp4"
    encode_mp4(frames, None, path, fps=FPS, settings=EncodeSettings(crf=crf))
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def half_size(frames: np.ndarray) -> np.ndarray:
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    size = (frames.shape[1] // 2, frames.shape[2] // 2)
    small = F.interpolate(video, size=size, mode="bilinear", antialias=True)
    return small.round().clamp(0, 255).byte().permute(0, 2, 3, 1).contiguous().numpy()


@pytest.fixture(scope="module")
def original() -> np.ndarray:
    return textured_clip()


@pytest.fixture(scope="module")
def marked(original) -> np.ndarray:
    return watermark.embed(original.copy(), PAYLOAD, KEY)


def test_round_trip_without_compression(marked):
    result = watermark.decode(marked, KEY)
    assert result.payload == PAYLOAD
    assert result.bit_errors_estimate == 0
    assert result.confidence == pytest.approx(1.0)
    assert result.crop == (0.0, 0.0, 1.0, 1.0)


def test_embed_marks_in_place_and_keeps_psnr_above_38_db(original):
    frames = original.copy()
    assert watermark.embed(frames, PAYLOAD, KEY) is frames
    mse = np.mean((frames.astype(np.float64) - original) ** 2)
    assert 10 * np.log10(255.0**2 / mse) >= 38.0


@pytest.mark.parametrize("crf", [23, 35])
def test_payload_survives_h264_reencode(marked, tmp_path, crf):
    assert watermark.decode(reencode(marked, tmp_path, crf), KEY).payload == PAYLOAD


def test_payload_survives_half_downscale_and_reencode(marked, tmp_path):
    frames = reencode(half_size(marked), tmp_path, 23)
    assert frames.shape[1:3] == (180, 320)
    assert watermark.decode(frames, KEY).payload == PAYLOAD


def test_payload_survives_a_trim_to_one_second(tmp_path):
    """A 2 s cut out of a 3 s clip, and a 1 s cut out of that: any subset of frames votes."""
    frames = watermark.embed(textured_clip(seconds=3), PAYLOAD, KEY)
    encoded = reencode(frames[FPS // 2 : FPS // 2 + 2 * FPS], tmp_path, 23)
    assert len(encoded) == 2 * FPS
    assert watermark.decode(encoded, KEY).payload == PAYLOAD
    assert watermark.decode(encoded[:FPS], KEY).payload == PAYLOAD


def test_payload_survives_a_10_percent_crop_and_finds_where(marked, tmp_path):
    """10% of each side cut, unevenly, then re-encoded: the decoder finds scale and offset."""
    cropped = np.ascontiguousarray(marked[:, 12:336, 48:624])  # 90% of 360, 90% of 640
    result = watermark.decode(reencode(cropped, tmp_path, 23), KEY)
    assert result.payload == PAYLOAD
    top, left, height, width = result.crop
    assert abs(top - 12 / 360) <= 1 / 128
    assert abs(left - 48 / 640) <= 1 / 128
    assert abs(height - 0.9) <= 1 / 128
    assert abs(width - 0.9) <= 1 / 128


def test_wrong_key_and_unmarked_clip_give_no_payload(original, marked):
    assert watermark.decode(marked, b"another key").payload is None
    assert watermark.decode(original, KEY).payload is None


def test_error_correction_fixes_flipped_coded_bits():
    codeword = watermark._codeword(PAYLOAD).astype(np.float64) * 2 - 1
    noisy = codeword.copy()
    noisy[::12] *= -1  # 17 of 204 coded bits wrong, spread out
    info = watermark._viterbi(noisy)
    assert np.packbits(info).tobytes()[: watermark.PAYLOAD_BYTES] == PAYLOAD


def test_clip_payload_is_8_stable_bytes_and_attempts_differ():
    assert len(PAYLOAD) == watermark.PAYLOAD_BYTES
    assert watermark.clip_payload("clip-0001") == PAYLOAD
    assert watermark.clip_payload("clip-0001", attempt=1) != PAYLOAD


def test_embed_rejects_a_payload_of_the_wrong_length(original):
    with pytest.raises(ValueError, match="8 bytes"):
        watermark.embed(original[:1].copy(), b"short", KEY)
