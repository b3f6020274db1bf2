"""Untrusted media, read safely: what a file says about itself before anything is looked up —
its C2PA manifest, the watermark payload in its pixels, its per-second fingerprints.

Uploads to the verification API are hostile until proven otherwise:

- **Sniffed, not believed.** The type comes from the file's first bytes (:func:`sniff`), never
  from its name or Content-Type. Only MP4/QuickTime, PNG, JPEG and WebP are read.
- **Read in a child process** (:class:`Inspector`) that holds no database connection or
  secret and runs under an address-space limit, a per-request CPU-time limit and a wall-clock
  deadline. A file that crashes a decoder kills only the child; one that makes it spin is
  killed at the deadline; one that asks for too much memory fails its allocation. Either way
  the caller gets :class:`InspectionFailed` and a fresh child serves the next request.
- **Bounded before decoding.** Frame size is checked from the container header and from every
  decoded frame, and decoding stops after ``max_seconds`` of timeline.

The child is started once and kept (importing torch, PyAV and c2pa takes about a second), so a
request pays only for reading its own file.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MP4 = "video/mp4"
QUICKTIME = "video/quicktime"
PNG = "image/png"
JPEG = "image/jpeg"
WEBP = "image/webp"
VIDEO_TYPES = {MP4, QUICKTIME}


class UnsupportedMedia(ValueError):
    """Not a format the verifier reads (by its bytes)."""


class InspectionFailed(Exception):
    """The file could not be read within the limits; ``code`` says how."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 3840 * 2160  # per frame or image
    max_seconds: int = 120  # of video timeline decoded
    memory_mb: int = 1536  # the child's address space (its imports take ~0.9 GB of it)
    cpu_seconds: int = 30  # per request
    timeout_s: float = 30.0  # per request, wall clock


def sniff(head: bytes) -> str:
    """The media type of a file from its first 16 bytes; raises :class:`UnsupportedMedia`."""
    if head[4:8] == b"ftyp":
        return QUICKTIME if head[8:10] == b"qt" else MP4
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    raise UnsupportedMedia("not an MP4, QuickTime, PNG, JPEG or WebP file")


# --- the child's side ----------------------------------------------------------------------


def _manifest(path: str, mime: str, anchors_pem: str | None) -> dict[str, Any]:
    from generation.provenance.c2pa_sign import UnreadableMedia, read_manifest

    try:
        result = read_manifest(Path(path), anchors_pem, mime=mime)
    except UnreadableMedia as exc:
        return {"state": "unreadable", "error": str(exc)}
    result.pop("validation_results", None)
    return result


def _video(path: str, limits: Limits, key: bytes) -> dict[str, Any]:
    import av

    from generation.provenance.fingerprint import pdq
    from generation.provenance.watermark import LumaMean, decode_mean

    luma = LumaMean()
    hashes = []
    damaged: list[int] = []
    with av.open(path, metadata_errors="ignore") as container:
        if not container.streams.video:
            raise InspectionFailed("no_video_stream", "The file has no video stream.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > limits.max_pixels:
            raise InspectionFailed(
                "media_too_large", f"{width}x{height} frames are larger than this server reads."
            )
        next_second = 0.0
        last_time = 0.0
        for frame in _frames(container, stream, damaged):
            if frame.width * frame.height > limits.max_pixels:
                raise InspectionFailed("media_too_large", "A frame is larger than allowed.")
            if (frame.width, frame.height) != (width, height):
                # A size change mid-stream: the watermark's mean needs one geometry; the
                # rest of the video is not read (the fingerprints so far still count).
                break
            when = frame.time if frame.time is not None else last_time
            if when >= limits.max_seconds:
                break
            last_time = when
            luma.add(_luma_plane(frame))
            if when + 1e-6 >= next_second + 0.5:
                digest, quality = pdq(frame.to_ndarray(format="rgb24"))
                hashes.append({"second": int(next_second), "hash": digest.hex(), "q": quality})
                next_second += 1.0
        fps = float(stream.average_rate) if stream.average_rate else None
    if luma.count == 0:
        raise InspectionFailed("unreadable_media", "No frame of the video could be decoded.")
    mark = decode_mean(luma.mean(), key)
    return {
        "media": {
            "kind": "video",
            "width": width,
            "height": height,
            "frames_read": luma.count,
            "damaged_packets": len(damaged),
            "seconds_read": round(last_time + (1 / fps if fps else 0), 3),
            "fps": fps,
        },
        "watermark": _mark(mark),
        "fingerprints": hashes,
    }


MAX_DAMAGED_PACKETS = 64


def _frames(container, stream, damaged: list[int]):
    """Decoded frames, packet by packet: a damaged packet (a flipped bit in a copy) is skipped
    and counted rather than ending the read, so a corrupted file is still reported on."""
    import av

    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            damaged.append(packet.pts or 0)
            if len(damaged) > MAX_DAMAGED_PACKETS:
                return
            continue
        yield from frames


# Planar formats whose first plane is 8-bit luma.
_Y_FIRST = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21"}


def _luma_plane(frame):
    """The frame's luma as (H, W) uint8. The decoder's Y plane is luma already (the watermark
    only needs it up to scale and offset), read in place: converting costs ~4 ms a 720p frame."""
    import numpy as np

    if frame.format.name not in _Y_FIRST:
        return frame.to_ndarray(format="gray")
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
    return rows[:, : frame.width]


def _image(path: str, limits: Limits, key: bytes) -> dict[str, Any]:
    import warnings

    import numpy as np
    from PIL import Image

    from generation.provenance.fingerprint import pdq
    from generation.provenance.watermark import LumaMean, decode_mean

    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    too_large = InspectionFailed("media_too_large", "The image is larger than this server reads.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                if image.width * image.height > limits.max_pixels:
                    raise too_large
                rgb = np.asarray(image.convert("RGB"))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise too_large from exc
    luma = LumaMean()
    luma.add(rgb)
    digest, quality = pdq(rgb)
    return {
        "media": {"kind": "image", "width": rgb.shape[1], "height": rgb.shape[0]},
        "watermark": _mark(decode_mean(luma.mean(), key)),
        "fingerprints": [{"second": 0, "hash": digest.hex(), "q": quality}],
    }


def _mark(result) -> dict[str, Any]:
    return {
        "payload": result.payload.hex() if result.payload else None,
        "confidence": round(result.confidence, 4),
        "sync": round(result.sync, 4),
        "crop": [round(v, 3) for v in result.crop],
    }


def inspect_file(
    path: str, mime: str, *, key: bytes, anchors_pem: str | None, limits: Limits
) -> dict[str, Any]:
    """Everything the file says about itself (runs in the child; callable directly in tests)."""
    started = time.perf_counter()
    try:
        body = (_video if mime in VIDEO_TYPES else _image)(path, limits, key)
    except InspectionFailed:
        raise
    except MemoryError as exc:
        raise InspectionFailed(
            "media_too_large", "Reading the file needs too much memory."
        ) from exc
    except Exception as exc:  # decoders raise many types for malformed input
        raise InspectionFailed("unreadable_media", f"The file could not be decoded: {exc}") from exc
    body["manifest"] = _manifest(path, mime, anchors_pem)
    body["mime"] = mime
    body["inspect_s"] = round(time.perf_counter() - started, 4)
    return body


def _warm_up() -> None:
    """Imports and first calls done before the first request (about a second), so that
    request pays only for its own file."""
    import numpy as np

    from generation.provenance import c2pa_sign  # noqa: F401
    from generation.provenance.fingerprint import pdq
    from generation.provenance.watermark import LumaMean, decode_mean

    frame = np.zeros((256, 256, 3), dtype=np.uint8)
    pdq(frame)
    luma = LumaMean()
    luma.add(frame[..., 0])
    decode_mean(luma.mean(), b"warm-up")


def _serve() -> None:
    """The child: one JSON request per line on stdin, one JSON answer per line on stdout."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints from libraries must not corrupt the protocol
    _warm_up()
    for line in sys.stdin:
        request = json.loads(line)
        limits = Limits(**request["limits"])
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = int(used.ru_utime + used.ru_stime)
        resource.setrlimit(
            resource.RLIMIT_CPU, (spent + limits.cpu_seconds, resource.RLIM_INFINITY)
        )
        try:
            answer = {
                "ok": inspect_file(
                    request["path"],
                    request["mime"],
                    key=base64.b64decode(request["key"]),
                    anchors_pem=request.get("anchors"),
                    limits=limits,
                )
            }
        except InspectionFailed as exc:
            answer = {"error": {"code": exc.code, "message": exc.message}}
        out.write(json.dumps(answer) + "\n")


# --- the parent's side ---------------------------------------------------------------------


def _limit_child(memory_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # The child only reads the file it is given; it writes nothing to disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    os.setsid()


class Inspector:
    """One warm child process, used by one request at a time, replaced when it fails."""

    def __init__(self, *, recycle_after: int = 500):
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._served = 0
        self._recycle_after = recycle_after
        self._memory_mb = 0
        self._owner = os.getpid()

    def _child(self, memory_mb: int) -> subprocess.Popen:
        if self._owner != os.getpid():
            # Forked (a server that preloads the app): the pipes belong to the parent's child.
            self._proc, self._owner = None, os.getpid()
        proc = self._proc
        if (
            proc is not None
            and proc.poll() is None
            and self._served < self._recycle_after
            and self._memory_mb == memory_mb
        ):
            return proc
        self.close()
        env = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "HOME", "TMPDIR"}}
        env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "generation.provenance.inspect"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            preexec_fn=lambda: _limit_child(memory_mb),
            text=True,
        )
        self._served = 0
        self._memory_mb = memory_mb
        return self._proc

    def start(self, limits: Limits) -> None:
        """Starts the child ahead of the first request (server start-up calls this)."""
        with self._lock:
            self._child(limits.memory_mb)

    def inspect(
        self, path: str, mime: str, *, key: bytes, anchors_pem: str | None, limits: Limits
    ) -> dict[str, Any]:
        request = {
            "path": str(path),
            "mime": mime,
            "key": base64.b64encode(key).decode(),
            "anchors": anchors_pem,
            "limits": asdict(limits),
        }
        with self._lock:
            proc = self._child(limits.memory_mb)
            self._served += 1
            try:
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
            except BrokenPipeError:
                self.close()
                raise InspectionFailed(
                    "inspector_unavailable", "The media reader failed."
                ) from None
            line = self._read_line(proc, limits.timeout_s)
        answer = json.loads(line)
        if "error" in answer:
            raise InspectionFailed(answer["error"]["code"], answer["error"]["message"])
        return answer["ok"]

    def _read_line(self, proc: subprocess.Popen, timeout_s: float) -> str:
        # Startup (imports) is not the file's fault: the first request gets extra time.
        deadline = time.monotonic() + timeout_s + (20 if self._served == 1 else 0)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise InspectionFailed(
                    "media_timeout", "Reading the file took longer than this server allows."
                )
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if ready:
                line = proc.stdout.readline()
                if line:
                    return line
                # EOF: the child died on this file (a decoder crash, the memory or CPU limit).
                self.close()
                raise InspectionFailed(
                    "unreadable_media", "The file could not be read within this server's limits."
                )

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(Exception):
                stream.close()


_shared: Inspector | None = None
_shared_lock = threading.Lock()


def shared_inspector() -> Inspector:
    """The process's inspector (one per server worker process)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Inspector()
        return _shared


if __name__ == "__main__":
    _serve()
