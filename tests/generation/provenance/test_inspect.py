"""Reading untrusted media: sniffing by bytes, and a child process that survives hostile files
(malformed, huge, slow) and answers every one with a clear failure."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from generation.media.encode import EncodeSettings, encode_mp4
from generation.provenance import watermark
from generation.provenance.inspect import (
    JPEG,
    MP4,
    PNG,
    WEBP,
    InspectionFailed,
    Inspector,
    Limits,
    UnsupportedMedia,
    sniff,
)
from tests.generation.media.helpers import moving_clip, mp4_boxes, tone

KEY = b"inspect-test-key"


@pytest.fixture(scope="module")
def inspector():
    inspector = Inspector()
    yield inspector
    inspector.close()


@pytest.fixture(scope="module")
def marked_mp4(tmp_path_factory):
    frames = moving_clip(frames=48, width=320, height=576)
    watermark.embed(frames, b"\x01\x02\x03\x04\x05\x06\x07\x08", KEY)
    path = tmp_path_factory.mktemp("inspect") / "marked.mp4"
    encode_mp4(frames, tone(2.0), path, settings=EncodeSettings(preset="ultrafast"))
    return path


def _inspect(inspector, path, mime=MP4, **limits):
    return inspector.inspect(str(path), mime, key=KEY, anchors_pem=None, limits=Limits(**limits))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header(width: int, height: int, *, complete: bool = True) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's calling card),
    with a token of image data (``complete``) or cut off after the header."""
    head = b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    )
    if not complete:
        return head
    return head + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b"")


def test_types_come_from_the_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="WEBP")
    assert sniff(buffer.getvalue()[:16]) == WEBP
    assert sniff(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00") == MP4
    assert sniff(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8) == PNG
    assert sniff(b"\xff\xd8\xff\xe0" + b"\x00" * 12) == JPEG
    for head in (b"", b"<html><body>", b"GIF89a" + b"\x00" * 10, b"%PDF-1.7"):
        with pytest.raises(UnsupportedMedia):
            sniff(head)


def test_a_marked_video_gives_its_payload_and_fingerprints(inspector, marked_mp4):
    found = _inspect(inspector, marked_mp4)
    assert found["watermark"]["payload"] == "0102030405060708"
    assert [h["second"] for h in found["fingerprints"]] == [0, 1]
    assert found["media"]["kind"] == "video" and found["media"]["frames_read"] == 48
    assert found["manifest"]["state"] == "absent"


MP4_HEADER = b"\x00\x00\x00\x18ftypmp42"
HOSTILE = {
    "random bytes behind an MP4 header": (MP4_HEADER + bytes(range(256)) * 40, "unreadable_media"),
    "an MP4 header alone": (MP4_HEADER + b"\x00\x00\x00\x00mp42isom", "unreadable_media"),
    "a PNG claiming 100000 x 100000 pixels": (_png_header(100_000, 100_000), "media_too_large"),
    "a PNG cut off after its header": (_png_header(64, 64, complete=False), "unreadable_media"),
    "a PNG with too little data": (_png_header(64, 64), "unreadable_media"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_files_fail_clearly_and_the_next_file_is_read(
    inspector, marked_mp4, tmp_path, name
):
    data, code = HOSTILE[name]
    path = tmp_path / "hostile"
    path.write_bytes(data)
    with pytest.raises(InspectionFailed) as failure:
        _inspect(inspector, path, sniff(data[:16]))
    assert failure.value.code == code, name
    assert _inspect(inspector, marked_mp4)["watermark"]["payload"] == "0102030405060708"


def test_a_truncated_video_is_read_as_far_as_it_goes(inspector, marked_mp4, tmp_path):
    data = marked_mp4.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    try:
        found = _inspect(inspector, path)
    except InspectionFailed as failure:
        assert failure.code == "unreadable_media"
    else:
        assert found["media"]["frames_read"] <= 48


def test_damaged_packets_are_skipped_and_the_rest_is_read(inspector, marked_mp4, tmp_path):
    data = bytearray(marked_mp4.read_bytes())
    [(_, offset, size)] = [box for box in mp4_boxes(bytes(data)) if box[0] == "mdat"]
    for at in range(offset + size // 3, offset + size // 3 + 4000, 97):
        data[at] ^= 0xFF  # corrupt a stretch of coded frames
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    found = _inspect(inspector, path)
    assert found["media"]["frames_read"] > 24
    assert found["watermark"]["payload"] == "0102030405060708"


def test_frames_larger_than_allowed_are_refused_before_decoding(inspector, marked_mp4):
    with pytest.raises(InspectionFailed) as failure:
        _inspect(inspector, marked_mp4, max_pixels=320 * 575)
    assert failure.value.code == "media_too_large"


def test_only_the_allowed_seconds_are_decoded(inspector, marked_mp4):
    found = _inspect(inspector, marked_mp4, max_seconds=1)
    assert found["media"]["frames_read"] == 24


def test_a_file_that_takes_too_long_is_cut_off_and_the_reader_replaced(inspector, marked_mp4):
    _inspect(inspector, marked_mp4)  # warm: the deadline below is the file's alone
    with pytest.raises(InspectionFailed) as failure:
        _inspect(inspector, marked_mp4, timeout_s=0.001)
    assert failure.value.code == "media_timeout"
    assert _inspect(inspector, marked_mp4)["watermark"]["payload"] == "0102030405060708"


def _png_bomb(path, side: int) -> None:
    """A valid ``side`` x ``side`` black PNG: a few hundred kB that decode to side**2 * 3 bytes."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * side)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def test_a_file_that_needs_more_memory_than_allowed_fails_not_the_server(marked_mp4, tmp_path):
    bomb = tmp_path / "bomb.png"
    _png_bomb(bomb, 16_000)  # 768 MB of pixels from ~750 kB of file
    # The pixel limit is lifted, so the address-space limit is what stops it.
    limits = Limits(max_pixels=10**9, memory_mb=1200)
    reader = Inspector()
    try:
        with pytest.raises(InspectionFailed) as failure:
            reader.inspect(str(bomb), PNG, key=KEY, anchors_pem=None, limits=limits)
        assert failure.value.code in {"media_too_large", "unreadable_media"}
        found = reader.inspect(str(marked_mp4), MP4, key=KEY, anchors_pem=None, limits=limits)
        assert found["watermark"]["payload"] == "0102030405060708"
    finally:
        reader.close()
