"""Decodes an uploaded recording inside a resource-limited child process.

Run as ``python -I _decoder.py INPUT OUTDIR PARAMS_JSON`` by :mod:`cameo.verification.decode`,
never imported by the server. The upload is hostile until proven otherwise: FFmpeg's demuxers
and decoders are large C code, and a crafted file can make them loop, allocate without bound or
crash. Here the address space, CPU time, written bytes and open files are capped before the
file is touched, so the worst a file can do is get this process killed; the parent reads only
plain ``.npy`` arrays and a JSON summary back, and checks their shapes before trusting them.

Only the standard library, NumPy and PyAV are imported: nothing from the project, so ``-I``
(no environment, no user site, no script directory on ``sys.path``) costs nothing.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path


def _limit(params: dict) -> None:
    memory = int(params["memory_bytes"])
    cpu = int(params["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(params["output_bytes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


class Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _scaled_size(width: int, height: int, longest: int) -> tuple[int, int]:
    scale = min(1.0, longest / max(width, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _decode(path: str, out: Path, params: dict) -> dict:
    import av
    import numpy as np

    max_seconds = float(params["max_seconds"])
    max_pixels = int(params["max_pixels"])
    step = 1.0 / float(params["sample_fps"])
    probe_step = float(params["probe_every_s"])
    try:
        container = av.open(
            path,
            format=params["format"],
            options={"probesize": "5000000", "analyzeduration": "5000000"},
            metadata_errors="ignore",
        )
    except (av.FFmpegError, ValueError, OSError) as exc:
        # FFmpeg's message names the server's temporary path; the reason stays generic.
        raise Refused("undecodable", "The file could not be opened as a video.") from exc
    with container:
        if not container.streams.video:
            raise Refused("no_video", "The recording has no video stream.")
        video = container.streams.video[0]
        width, height = int(video.codec_context.width), int(video.codec_context.height)
        if width <= 0 or height <= 0 or width * height > max_pixels:
            raise Refused(
                "bad_dimensions", f"The video is {width}x{height}; at most {max_pixels} pixels."
            )
        size = _scaled_size(width, height, int(params["analysis_longest_side"]))
        video.thread_type = "AUTO"
        frames, times, probes = [], [], []
        decoded = 0
        next_sample = 0.0
        next_probe = 0.5
        last_time = 0.0
        try:
            for frame in container.decode(video):
                decoded += 1
                if frame.width * frame.height > max_pixels:
                    raise Refused("bad_dimensions", "A frame is larger than the stream declared.")
                if decoded > params["max_frames"]:
                    raise Refused("too_long", "The recording has too many frames.")
                t = frame.time
                if t is None:
                    continue
                if t > max_seconds + 1.0:
                    raise Refused("too_long", f"The recording is longer than {max_seconds:g} s.")
                last_time = max(last_time, t)
                # Phones store sideways frames and a display rotation (counter-clockwise).
                turns = (getattr(frame, "rotation", 0) or 0) // 90 % 4
                if t + 1e-6 >= next_sample:
                    image = frame.reformat(width=size[0], height=size[1], format="rgb24")
                    frames.append(np.ascontiguousarray(np.rot90(image.to_ndarray(), turns)))
                    times.append(t)
                    next_sample = max(next_sample + step, t + step / 2)
                if t + 1e-6 >= next_probe and len(probes) < params["probe_frames"]:
                    # Full resolution, luma only: screen texture lives in the finest detail.
                    gray = np.rot90(frame.to_ndarray(format="gray"), turns)
                    side = int(params["probe_side"])
                    y0 = max(0, (gray.shape[0] - side) // 2)
                    x0 = max(0, (gray.shape[1] - side) // 2)
                    probes.append(np.ascontiguousarray(gray[y0 : y0 + side, x0 : x0 + side]))
                    next_probe += probe_step
        except av.FFmpegError as exc:
            if not frames:
                raise Refused("undecodable", "The video could not be decoded.") from exc
            # A damaged tail: what decoded is analysed, and the duration says how much that was.
        if not frames:
            raise Refused("undecodable", "The video has no decodable frames.")

        audio_samples = None
        has_audio = bool(container.streams.audio)
    rate = int(params["audio_rate"])
    if has_audio:
        audio_samples = _decode_audio(path, params, rate, max_seconds)
    np.save(out / "frames.npy", np.stack(frames))
    np.save(out / "times.npy", np.asarray(times, dtype=np.float64))
    if probes:
        shape = min(p.shape[0] for p in probes), min(p.shape[1] for p in probes)
        np.save(out / "probes.npy", np.stack([p[: shape[0], : shape[1]] for p in probes]))
    if audio_samples is not None:
        np.save(out / "audio.npy", audio_samples)
    shown = frames[0].shape[:2]
    if (shown[0] > shown[1]) != (height > width):
        width, height = height, width
    return {
        "width": width,
        "height": height,
        "duration": last_time + step,
        "frames_decoded": decoded,
        "has_audio": has_audio,
        "audio_rate": rate,
        "codec": video.codec_context.name,
    }


def _decode_audio(path: str, params: dict, rate: int, max_seconds: float):
    import av
    import numpy as np

    chunks = []
    total = 0
    limit = int((max_seconds + 1.0) * rate)
    with av.open(path, format=params["format"], metadata_errors="ignore") as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        try:
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    data = out.to_ndarray().reshape(-1)
                    chunks.append(data)
                    total += data.size
                if total > limit:
                    break
        except av.FFmpegError:
            pass  # a damaged audio tail: keep what decoded
    if not chunks:
        return np.zeros(0, np.float32)
    audio = np.concatenate(chunks)[:limit].astype(np.float32)
    np.nan_to_num(audio, copy=False)
    return np.clip(audio, -1.0, 1.0)


def main() -> int:
    path, out, raw = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    params = json.loads(raw)
    _limit(params)
    try:
        summary = _decode(path, out, params)
    except Refused as exc:
        summary = {"refused": exc.code, "message": str(exc)}
    except MemoryError:
        summary = {"refused": "too_large", "message": "Decoding needed more memory than allowed."}
    (out / "summary.json").write_text(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
