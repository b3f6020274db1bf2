"""Generation benchmark: the API, the hand-off to an idle worker, and render vs post-processing.

Run: ``python -m bench.generation [--requests N] [--uvicorn-requests N] [--jobs N]
[--repeat N] [--contact-sheet PATH]``.

Everything is real: PostgreSQL and Redis (a database of their own, see ``bench.common``),
gunicorn and uvicorn server processes, a Celery worker process, the ``previs`` engine and the
media pipeline. Each figure comes with a baseline measured in the same run:

- ``POST /v1/videos`` (JSON, API key) against ``GET /api/v1/me`` with the same key on the same
  server, interleaved request by request, so both see the same machine. Production serves REST
  with gunicorn (WSGI) workers; uvicorn is measured too, for comparison. No worker runs while
  they are measured (the queues are purged afterwards), so the renders the POSTs enqueue do
  not compete for the two cores.
- an idle, warm worker (``-Q gpu,cpu -c 1``, one job already run) claiming a job: transaction
  commit to the job's ``started_at``, against the enqueue-to-run time of a no-op task on the
  same queue and worker.
- render vs post-processing of the reference clip, in this process, as ``generation.work`` does
  it: the engine's render against ``generation.pipeline.produce`` (watermark, encode, previews,
  sign, verify, store) for several x264 presets.

The machine is shared: timings of whole stages are the best of ``--repeat`` runs (only the
minimum is stable); latencies are percentiles of all requests.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import json
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from celery import shared_task

from bench.common import (
    BIN,
    Proc,
    bench_database,
    best_of,
    cpus,
    emit,
    free_port,
    interleaved_best,
    listening,
    percentile,
    wait_for,
)

PROMPT = 'a red ball bouncing on a beach at sunset, someone says "what a beautiful evening"'
NARRATED = 'a red ball bouncing on a beach at sunset. "What a beautiful evening."'
SECONDS, SIZE = 4, "720x1280"
SEED = 7
ADULT = dt.date(1990, 1, 1)
DEFAULT_SHEET = Path(tempfile.gettempdir()) / "contact_clip.png"


@shared_task(name="bench.noop_marker", ignore_result=True)
def noop_marker(marker: str) -> None:
    """The baseline of a hand-off: a task that only says when it ran."""
    ran_at = time.time()
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.REDIS_URL).set(marker, repr(ran_at), ex=300)


# --- Helpers ------------------------------------------------------------------------------


def _user_with_key(handle: str):
    from accounts.services import api_key_create, user_create

    user = user_create(handle=handle, birth_date=ADULT)
    _, raw = api_key_create(user=user, name="bench")
    return user, raw


def _spec(prompt: str, *, seconds: int, size: str):
    from generation.services import JobSpec, resolve_model

    model, engine = resolve_model(None)
    return JobSpec(prompt=prompt, model=model, engine=engine, seconds=seconds, size=size, seed=SEED)


def _create_job(user, spec):
    """(job, wall-clock time of its commit). The marker is registered before the service's
    own on-commit hooks, so it fires right after COMMIT and before the task is sent."""
    from django.db import transaction

    from generation.services import job_create

    committed: list[float] = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.time()))
        (job,) = job_create(user=user, spec=spec)
    return job, committed[0]


def _purge_queues() -> int:
    from config.celery import app

    return app.control.purge()


def _wait_done(job_id, timeout: float):
    from generation.models import TERMINAL, GenerationJob, JobStatus

    def finished():
        job = GenerationJob.objects.get(pk=job_id)
        return job if job.status in TERMINAL else None

    job = wait_for(finished, timeout, f"job {job_id} to finish", interval=0.05)
    if job.status != JobStatus.COMPLETED:
        raise RuntimeError(f"job {job_id} ended {job.status}: {job.error_message}")
    return job


# --- a. API latency -----------------------------------------------------------------------


class Client:
    """One HTTP/1.1 connection, reopened when the server closes it (gunicorn's sync workers
    close after every response, as they do in production)."""

    def __init__(self, port: int, key: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.auth = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, body: dict | None = None, headers=None) -> float:
        """Milliseconds from sending the request to the last byte of a 200 response."""
        data = json.dumps(body).encode() if body is not None else None
        head = {**self.auth, **(headers or {})}
        if data is not None:
            head["Content-Type"] = "application/json"
        started = time.perf_counter()
        self.conn.request(method, path, body=data, headers=head)
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"{method} {path} -> {response.status}: {payload[:500]!r}")
        return elapsed

    def close(self) -> None:
        self.conn.close()


def _start_server(kind: str, log_dir: Path) -> tuple[Proc, int]:
    port = free_port()
    if kind == "gunicorn":
        args = [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ]
    else:
        args = [
            str(BIN / "uvicorn"),
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--lifespan",
            "off",
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    proc = Proc(args, log_dir / f"{kind}.log")

    def up():
        proc.check_alive(kind)
        return listening(port)

    wait_for(up, 60, f"{kind} to listen")
    return proc, port


def api_latency(kind: str, requests: int, log_dir: Path, lines: list[str]) -> None:
    _, key = _user_with_key(f"bench_{kind}")
    proc, port = _start_server(kind, log_dir)
    client = Client(port, key)
    body = {"prompt": PROMPT, "model": "sora-2", "seconds": str(SECONDS), "size": SIZE}
    idempotent = kind == "gunicorn"
    try:
        # Both server processes load Django lazily and open their database and broker
        # connections on first use; that start-up is not what a client waits for later.
        for _ in range(30):
            client.call("GET", "/api/v1/me")
            client.call("POST", "/v1/videos", body)
        floor, create, create_keyed = [], [], []
        for index in range(requests):
            floor.append(client.call("GET", "/api/v1/me"))
            create.append(client.call("POST", "/v1/videos", body))
            if idempotent:
                key_header = {"Idempotency-Key": f"bench-{os.getpid()}-{index}"}
                create_keyed.append(client.call("POST", "/v1/videos", body, key_header))
    finally:
        client.close()
        proc.stop()
    workers = "gunicorn -w 2 (WSGI, as production serves REST)"
    if kind != "gunicorn":
        workers = "uvicorn --workers 2 (ASGI, for comparison)"
    f50, f99 = percentile(floor, 50), percentile(floor, 99)
    c50, c99 = percentile(create, 50), percentile(create, 99)
    emit(
        lines,
        f"generation.post_v1_videos_ms[{kind}]: p50 {c50:.1f}, p99 {c99:.1f} = "
        f"{c50 / f50:.2f}x / {c99 / f99:.2f}x the floor GET /api/v1/me (p50 {f50:.1f}, "
        f"p99 {f99:.1f}); {requests} of each, interleaved, one client; {workers}; "
        f"target p50 <= 30 ms",
    )
    if create_keyed:
        k50, k99 = percentile(create_keyed, 50), percentile(create_keyed, 99)
        emit(
            lines,
            f"generation.post_v1_videos_idempotency_key_ms[{kind}]: p50 {k50:.1f}, "
            f"p99 {k99:.1f} = {k50 / f50:.2f}x / {k99 / f99:.2f}x the floor",
        )


# --- b. Commit to start on an idle worker -------------------------------------------------


def _start_worker(log_dir: Path) -> Proc:
    from config.celery import app

    hostname = f"bench-{os.getpid()}@{socket.gethostname()}"
    args = [
        str(BIN / "celery"),
        "-A",
        "config",
        "worker",
        "-Q",
        "gpu,cpu",
        "--concurrency",
        "1",
        "--pool",
        "prefork",
        "--loglevel",
        "INFO",
        "--hostname",
        hostname,
        "--without-gossip",
        "--without-mingle",
        "--include",
        "bench.generation",
    ]
    proc = Proc(args, log_dir / "worker.log")

    def ready():
        proc.check_alive("the Celery worker")
        return bool(app.control.ping(destination=[hostname], timeout=0.5))

    wait_for(ready, 90, "the Celery worker to answer a ping", interval=0.2)
    return proc


def _noop_round_trip(marker_client) -> float:
    from generation.tasks import broker_priority

    marker = f"bench:noop:{uuid.uuid4().hex}"
    sent = time.time()
    noop_marker.apply_async(args=(marker,), queue="gpu", priority=broker_priority(5))
    ran_at = wait_for(lambda: marker_client.get(marker), 30, "the no-op task", interval=0.005)
    return (float(ran_at) - sent) * 1000


def job_start(jobs: int, log_dir: Path, lines: list[str]) -> None:
    import redis
    from django.conf import settings

    user, _ = _user_with_key("bench_worker")
    marker_client = redis.Redis.from_url(settings.REDIS_URL)
    # A small clip: only the claim is measured, and every job must finish before the next so
    # the worker is idle when it arrives.
    spec = _spec("a red ball bouncing on a beach at sunset", seconds=1, size="480x854")
    proc = _start_worker(log_dir)
    try:
        job, _ = _create_job(user, spec)
        _wait_done(job.pk, 180)  # the first job loads what the worker did not warm
        for _ in range(3):
            _noop_round_trip(marker_client)
        starts, noops = [], []
        for _ in range(jobs):
            time.sleep(0.5)
            noops.append(_noop_round_trip(marker_client))
            time.sleep(0.5)
            job, committed = _create_job(user, spec)
            done = _wait_done(job.pk, 120)
            starts.append((done.started_at.timestamp() - committed) * 1000)
    finally:
        proc.stop()
    s50, smax = percentile(starts, 50), max(starts)
    n50, nmax = percentile(noops, 50), max(noops)
    emit(
        lines,
        f"generation.job_start_after_commit_ms: p50 {s50:.1f}, max {smax:.1f} = {s50 / n50:.2f}x "
        f"/ {smax / nmax:.2f}x a no-op task's enqueue-to-run on the same worker and queue "
        f"(p50 {n50:.1f}, max {nmax:.1f}); {jobs} jobs, each on an idle warm worker "
        f"(-Q gpu,cpu -c 1), commit -> started_at; target <= 200 ms",
    )


# --- c. Render vs post-processing ---------------------------------------------------------


def _speech_band_db(audio: np.ndarray, rate: int, start_s: float, end_s: float) -> float:
    """RMS level (dBFS) of the 300-3400 Hz band of mono ``audio`` between two times."""
    segment = audio[int(start_s * rate) : int(end_s * rate)]
    spectrum = np.fft.rfft(segment * np.hanning(len(segment)))
    freqs = np.fft.rfftfreq(len(segment), 1 / rate)
    band = spectrum[(freqs >= 300) & (freqs <= 3400)]
    power = 2 * np.sum(np.abs(band) ** 2) / (len(segment) * np.sum(np.hanning(len(segment)) ** 2))
    return 10 * np.log10(max(power, 1e-12))


def _decode(path: Path) -> dict:
    """Frames, fps, mono audio and what the headers say of the audio's length."""
    import av

    with av.open(str(path)) as container:
        fps = int(container.streams.video[0].average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        header_s = float(stream.duration * stream.time_base) if stream.duration else 0.0
        chunks = [f.to_ndarray() for f in container.decode(audio=0)]
    audio = np.concatenate(chunks, axis=1).astype(np.float32)  # (channels, samples), planar
    return {
        "frames": frames,
        "fps": fps,
        "audio": audio.mean(axis=0),
        "rate": rate,
        "audio_header_s": header_s,
    }


def contact_sheet(
    frames: list[np.ndarray], fps: int, out: Path, *, count: int = 12, columns: int = 4
) -> None:
    """A PNG grid of ``count`` evenly spaced frames, each labelled with its time in a strip
    under it (a label on the picture could hide the moving watermark it must show)."""
    from PIL import Image, ImageDraw, ImageFont

    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    height, width = frames[0].shape[:2]
    tile_w, strip = 240, 24
    tile_h = round(tile_w * height / width)
    rows = -(-count // columns)
    sheet = Image.new("RGB", (columns * tile_w, rows * (tile_h + strip)), "black")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=16)
    for n, index in enumerate(picks):
        x, y = (n % columns) * tile_w, (n // columns) * (tile_h + strip)
        tile = Image.fromarray(frames[index]).resize((tile_w, tile_h), Image.Resampling.LANCZOS)
        sheet.paste(tile, (x, y))
        label = f"t={index / fps:.2f} s (frame {index})"
        draw.text((x + 6, y + tile_h + 3), label, fill="white", font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)


def render_vs_post(repeat: int, sheet_path: Path, lines: list[str]) -> None:
    from django.conf import settings
    from django.core.files.storage import default_storage
    from django.test import override_settings

    from generation.engines.base import RenderRequest
    from generation.engines.registry import get_engine
    from generation.models import GenerationJob, JobAttempt, JobStage
    from generation.pipeline import produce, scratch_dir
    from generation.runner import POST_SPAN, ProgressReporter, load_intermediate, save_intermediate

    user, _ = _user_with_key("ava_bench")
    job, _ = _create_job(user, _spec(PROMPT, seconds=SECONDS, size=SIZE))
    _purge_queues()  # the job is worked here, in this process, not by a worker
    engine = get_engine(job.engine)
    engine.warm_up()
    plan = engine.plan(job.prompt, seconds=job.seconds)
    job.plan, job.engine_version = plan.to_dict(), engine.version
    GenerationJob.objects.filter(pk=job.pk).update(plan=job.plan, engine_version=job.engine_version)
    request = RenderRequest(plan=plan, width=job.width, height=job.height, seed=job.seed)
    # "someone says" puts a speaking figure in the scene; the same line from an unseen
    # narrator is the cheaper scene render_previs measures, and so the harder test of the
    # post-processing ratio below.
    narrated_plan = engine.plan(NARRATED, seconds=job.seconds)
    narrated_request = dataclasses.replace(request, plan=narrated_plan)
    engine.render(request)  # the first spoken line loads the voice model, once per process
    renders = interleaved_best(
        repeat,
        {
            "reference": lambda: engine.render(request),
            "narrated": lambda: engine.render(narrated_request),
        },
    )
    (render_s, result), (narrated_s, _) = renders["reference"], renders["narrated"]
    clip_s = len(result.frames) / result.fps
    tag = f"best of {repeat}, {cpus()} CPUs, in-process, engine warm"
    emit(
        lines,
        f"generation.render_s: {render_s:.2f} = {clip_s / render_s:.2f}x real time "
        f"({clip_s:.0f} s {SIZE}, '{PROMPT}' -> objects: "
        f"{', '.join(o.label for o in plan.objects)}; {tag}; target >= 0.5x)",
    )
    emit(
        lines,
        f"generation.render_s[narrated, no figure]: {narrated_s:.2f} = "
        f"{clip_s / narrated_s:.2f}x real time, {render_s / narrated_s:.2f}x faster than with "
        f"the figure ('{NARRATED}' -> objects: "
        f"{', '.join(o.label for o in narrated_plan.objects)}; {tag})",
    )

    # The worker's render task stores the frames for the post-processing task, which loads
    # them: a cost of splitting the two stages across queues, outside produce() itself.
    attempt = JobAttempt.objects.create(job=job, stage=JobStage.RENDERING, worker="bench")
    save_s, name = best_of(repeat, lambda: save_intermediate(attempt, result))
    load_s, _ = best_of(repeat, lambda: load_intermediate(name))
    handoff_s = save_s + load_s
    stored_mb = default_storage.size(name) / 1e6
    emit(
        lines,
        f"generation.handoff_s: {handoff_s:.2f} = {handoff_s / render_s:.2f}x render, "
        f"{handoff_s / narrated_s:.2f}x the narrated render (save {save_s:.2f} in the gpu "
        f"task + load {load_s:.2f} in the cpu task; {stored_mb:.0f} MB zstd; {tag})",
    )

    configured = settings.GENERATION_X264_PRESET
    presets = list(dict.fromkeys([configured, "ultrafast", "superfast"]))
    scratch_numbers = iter(range(900_000, 1_000_000))

    def postprocess(preset: str):
        # produce() marks the frames in place, as the worker does with the frames it loaded;
        # each run gets a fresh copy, made before the clock starts.
        frames = dataclasses.replace(result, frames=result.frames.copy())
        GenerationJob.objects.filter(pk=job.pk).update(progress=POST_SPAN[0])
        job.progress = POST_SPAN[0]
        with override_settings(GENERATION_X264_PRESET=preset):
            started = time.perf_counter()
            produced = produce(
                job=job,
                result=frames,
                prefix=f"clips/{job.id.hex}/bench-{preset}",
                scratch=scratch_dir(job.id.hex, next(scratch_numbers)),
                on_progress=ProgressReporter(job, POST_SPAN),
                should_stop=lambda: False,
            )
            return time.perf_counter() - started, produced

    rounds = interleaved_best(repeat, {p: lambda p=p: postprocess(p) for p in presets}, timed=True)
    outputs = {}
    for preset in presets:
        post_s, produced = rounds[preset]
        with default_storage.open(produced.metadata, "rb") as handle:
            encode_s = json.load(handle)["encode"]["encode_s"]
        outputs[preset] = produced
        which = f"{preset}, configured" if preset == configured else preset
        emit(
            lines,
            f"generation.postprocess_s[{which}]: {post_s:.2f} = {post_s / render_s:.2f}x render, "
            f"{post_s / narrated_s:.2f}x the narrated render (target <= 0.5x; encode "
            f"{encode_s:.2f} of it; {produced.bytes} bytes = "
            f"{produced.bytes * 8 / clip_s / 1e6:.2f} Mbit/s; manifest "
            f"{produced.manifest['state']}); with the hand-off "
            f"{(post_s + handoff_s) / render_s:.2f}x / {(post_s + handoff_s) / narrated_s:.2f}x; "
            f"{tag}",
        )

    final = Path(default_storage.path(outputs[configured].video))
    decoded = _decode(final)
    frames, fps, audio, rate = (decoded[k] for k in ("frames", "fps", "audio", "rate"))
    contact_sheet(frames, fps, sheet_path)
    emit(
        lines,
        f"generation.contact_sheet: {sheet_path} (12 frames of the final signed MP4, "
        f"preset {configured})",
    )
    video_s = len(frames) / fps
    audio_s = len(audio) / rate
    header_s = decoded["audio_header_s"]
    emit(
        lines,
        f"generation.audio_video_duration_s: audio {header_s:.4f} by the header, "
        f"{audio_s:.4f} decoded (AAC pads its last 1024-sample frame) vs video {video_s:.4f} "
        f"({len(frames)} frames at {fps} fps; header difference "
        f"{abs(header_s - video_s) * 1000:.1f} ms)",
    )
    speech = [e for e in result.events if e.get("type") == "speech"]
    if not speech:
        emit(lines, "generation.speech: no speech event in the render (dialogue not spoken)")
        return
    start, end = float(speech[0]["t"]), float(speech[0].get("end") or speech[0]["t"] + 1.0)
    # The same plan and seed without the line: the only difference in the window is the voice.
    silent_plan = dataclasses.replace(plan, dialogue=[])
    silent = engine.render(dataclasses.replace(request, plan=silent_plan))
    silent_mono = silent.audio.mean(axis=0)
    with_line = _speech_band_db(audio, rate, start, end)
    without_line = _speech_band_db(silent_mono, silent.sample_rate, start, end)
    outside = [(0.0, start), (end, audio_s)]
    outside_db = max(_speech_band_db(audio, rate, a, b) for a, b in outside if b - a > 0.1)
    emit(
        lines,
        f"generation.speech_band_db: {with_line:.1f} dBFS during the line "
        f"'{speech[0].get('text')}' ({start:.2f}-{end:.2f} s) in the final MP4 vs "
        f"{without_line:.1f} with the same plan and seed without it "
        f"({with_line - without_line:+.1f} dB) and {outside_db:.1f} at most elsewhere in the clip "
        f"(300-3400 Hz RMS)",
    )


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--uvicorn-requests", type=int, default=100, help="0 skips uvicorn")
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--contact-sheet", type=Path, default=DEFAULT_SHEET)
    args = parser.parse_args(argv)
    lines: list[str] = []
    with bench_database() as env:
        log_dir = env.scratch / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        api_latency("gunicorn", args.requests, log_dir, lines)
        if args.uvicorn_requests > 0:
            api_latency("uvicorn", args.uvicorn_requests, log_dir, lines)
        _purge_queues()
        job_start(args.jobs, log_dir, lines)
        render_vs_post(args.repeat, args.contact_sheet, lines)
    return lines


if __name__ == "__main__":
    main()
