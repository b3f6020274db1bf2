"""Hostile and broken uploads: each is refused with a clear reason, quickly, and the server
process survives it."""

import time
from pathlib import Path

import av
import numpy as np
import pytest

from cameo.verification import Limits, verify_recording
from cameo.verification.decode import DecodeRefused, decode_recording

LIMITS = Limits(timeout_seconds=30)


def run(path, limits=LIMITS):
    started = time.monotonic()
    result = verify_recording(
        str(path), digits=["1", "2", "3"], turns=["left"], known_fingerprints=[], limits=limits
    )
    return result, time.monotonic() - started


def decode_reason(result) -> str:
    assert result.decision == "fail"
    assert [r["check"] for r in result.reasons] == ["decode"]
    assert result.reasons[0]["ok"] is False
    return result.reasons[0]["detail"]


def tiny_video(path: Path, *, width=64, height=64, frames=8, fps=8) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(frames):
            image = np.full((height, width, 3), (i * 30) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_zero_length_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    result, took = run(path)
    assert "(empty)" in decode_reason(result)
    assert took < 1


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(1).bytes(200_000))
    result, _ = run(path)
    assert "(unsupported_format)" in decode_reason(result)


def test_random_bytes_behind_an_mp4_signature(tmp_path):
    path = tmp_path / "fake.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + np.random.default_rng(2).bytes(200_000))
    result, took = run(path)
    assert "(undecodable)" in decode_reason(result) or "(no_video)" in decode_reason(result)
    assert took < LIMITS.timeout_seconds


def test_truncated_recording(tmp_path, recording):
    data = Path(recording("good")).read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 3])
    result, took = run(path)
    # faststart puts the index first: a third of the file decodes a second or so, and no more.
    assert result.decision == "fail"
    assert any(r["check"] == "decode" and not r["ok"] for r in result.reasons)
    assert took < LIMITS.timeout_seconds


def test_a_playlist_is_never_followed(tmp_path):
    """An HLS playlist naming a local file must not be opened as one (FFmpeg would read it)."""
    secret = tmp_path / "secret.mp4"
    tiny_video(secret)
    path = tmp_path / "playlist.mp4"
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{secret}\n")
    result, _ = run(path)
    assert "(unsupported_format)" in decode_reason(result)


def test_huge_dimensions_are_refused_before_decoding(tmp_path):
    # A real stream whose header declares more pixels than the limit allows.
    path = tiny_video(tmp_path / "huge.mp4", width=4096, height=2304, frames=2)
    result, took = run(path, Limits(timeout_seconds=30, max_pixels=4096 * 2304 - 1))
    assert "(bad_dimensions)" in decode_reason(result)
    assert took < LIMITS.timeout_seconds


def test_huge_dimensions_patched_into_the_container(tmp_path):
    path = tiny_video(tmp_path / "patched.mp4")
    data = bytearray(path.read_bytes())
    # The avc1 sample entry's width and height (16-bit each) and tkhd's (16.16 fixed point).
    entry = data.index(b"avc1") + 4 + 24
    data[entry : entry + 4] = (65535).to_bytes(2, "big") * 2
    tkhd = data.index(b"tkhd")
    data[tkhd + 4 + 76 : tkhd + 4 + 84] = (65535 << 16).to_bytes(4, "big") * 2
    path.write_bytes(bytes(data))
    result, took = run(path)
    # FFmpeg sizes the picture from the stream itself (64x64), not from the container's claim:
    # it decodes, and is refused for what it is, a one-second clip.
    assert "The recording is 1.0 s" in decode_reason(result)
    assert took < LIMITS.timeout_seconds


def test_too_short_recording(tmp_path):
    result, _ = run(tiny_video(tmp_path / "short.mp4", frames=8, fps=8))
    assert "at least 3 s" in decode_reason(result)


def test_oversized_upload_is_refused_unread(tmp_path):
    path = tmp_path / "big.mp4"
    with open(path, "wb") as handle:
        handle.truncate(LIMITS.max_bytes + 1)
    result, took = run(path)
    assert "(too_large)" in decode_reason(result)
    assert took < 1


def test_decoding_past_the_time_bound_is_stopped(recording):
    started = time.monotonic()
    with pytest.raises(DecodeRefused) as refused:
        decode_recording(recording("good"), Limits(timeout_seconds=0.05))
    assert refused.value.code == "timeout"
    assert time.monotonic() - started < 5


def test_decoding_past_the_memory_bound_is_stopped(recording):
    with pytest.raises(DecodeRefused) as refused:
        decode_recording(recording("good"), Limits(memory_bytes=64 * 1024**2))
    assert refused.value.code in ("decoder_crashed", "too_large")
