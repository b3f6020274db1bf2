"""Provenance benchmark: fingerprint recall, false matches and lookup time at a million clips,
and the verification of a stripped clip end to end.

Run: ``python -m bench.provenance [--clips N] [--repeat N]``.

1. **Recall table.** Clips rendered by the previs engine from distinct prompts (4 s, 360x640)
   go through the pipeline's marks (visible and invisible) and its encoder and are indexed
   with the pipeline's own function. Copies of some of them are made the way re-uploads are
   (the watermark benchmark's variants: CRF 23 and 35, half size, 10% crop, 2 s trim,
   screen-recording-like resample) and looked up; so are clips from other prompts that were
   never indexed. For each copy: whether the watermark and the fingerprints each named the
   right clip; for the unrelated clips: whether anything was (falsely) matched.
2. **A million clips.** ``--clips`` clips (1,000,000 by default) of four seconds are added to
   the index with random hashes (4 fingerprints each), then the lookups are timed against a
   sequential scan computing the same Hamming distances over every stored hash (the
   baseline, same run, same data). Real PDQ hashes cluster more than random ones, which puts
   more candidates in each probe: the figure is a lower bound on the work, noted as such.
3. **Verification.** A 4 s 720x1280 clip through the same marks, encoded, signed, stored as a
   clip; a copy stripped of its manifest (re-encoded) is verified with the service the API
   uses (child process, fingerprint lookup at the size of part 2), cold and warm.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import common

PROMPTS = [
    "a red ball bounces on a sunny beach",
    "a blue cube slides across a wooden table in a kitchen",
    "three yellow balls fall onto a grassy hill at sunset",
    "a green cylinder rolls down a snowy street at night",
    "an orange ball drops into a pool in a studio",
    "a purple cube tumbles down stairs in a library",
    "a white sphere floats over a desert at noon",
    "two red crates fall onto a dock by the sea at dawn",
    "a black ball rolls through a forest in the rain",
    "a pink cube bounces in a neon city street",
    "a golden ball spins on a marble floor in a museum",
    "a grey boulder rolls across a moonlit field",
]
UNRELATED = [
    "a cat walks across a rooftop at dusk",
    "a paper plane glides over a classroom",
    "a teal cone wobbles on a glass table in an office",
    "a brown barrel rolls along a pier in fog",
    "a lime ball rolls across a tennis court at noon",
    "a silver cube falls into deep snow in a mountain village",
    "a yellow car drives along a coastal road at sunset",
    "a dog runs through a park in autumn",
]
WIDTH, HEIGHT, SECONDS = 360, 640, 4


def _render(engine, prompt: str, seed: int, size=(WIDTH, HEIGHT)) -> np.ndarray:
    from generation.engines.base import RenderRequest

    plan = engine.plan(prompt, seconds=SECONDS)
    result = engine.render(RenderRequest(plan=plan, width=size[0], height=size[1], seed=seed))
    return result.frames.copy()


def _mark(frames: np.ndarray, payload: bytes, key: bytes) -> np.ndarray:
    from generation.media.watermark import apply_watermark, watermark_text
    from generation.provenance.watermark import embed

    apply_watermark(frames, watermark_text("bench"), fps=24, phase=0, out=frames)
    embed(frames, payload, key)
    return frames


def _user():
    from accounts.models import User

    return User.objects.create_user(
        handle=f"bench{os.getpid()}", email=f"bench{os.getpid()}@example.test", password=None
    )


def _store_clip(user, frames: np.ndarray, payload: bytes, fps: int = 24):
    """A clip row and its fingerprints, as the worker stores them."""
    from generation.models import Clip, GenerationJob, JobStage, JobStatus
    from generation.provenance.fingerprint import fingerprint_frames
    from generation.services import clip_fingerprints_store

    job = GenerationJob.objects.create(
        user=user,
        prompt="bench",
        model="sora-2",
        engine="previs",
        seconds=SECONDS,
        size=f"{frames.shape[2]}x{frames.shape[1]}",
        seed=0,
        params={},
        params_hash="",
        status=JobStatus.COMPLETED,
        stage=JobStage.DONE,
    )
    clip = Clip.objects.create(
        job=job,
        user=user,
        duration_s=SECONDS,
        width=frames.shape[2],
        height=frames.shape[1],
        bytes=0,
        sha256="",
        manifest={"state": "trusted"},
        watermark=payload,
    )
    clip_fingerprints_store(clip=clip, hashes=fingerprint_frames(frames, fps))
    return clip


def _lookup(frames: np.ndarray, fps: int = 24):
    from generation.provenance.fingerprint import fingerprint_frames
    from generation.selectors import clips_matching

    return clips_matching(hashes=fingerprint_frames(frames, fps))


def recall_table(engine, say, work: Path, key: bytes) -> dict:
    from bench.watermark import read_frames, variants
    from generation.media.encode import EncodeSettings, encode_mp4
    from generation.provenance import watermark

    user = _user()
    clips = []
    for index, prompt in enumerate(PROMPTS):
        payload = watermark.clip_payload(f"bench-{index}")
        frames = _mark(_render(engine, prompt, seed=index), payload, key)
        path = work / f"clip-{index}.mp4"
        encode_mp4(frames, None, path, fps=24, settings=EncodeSettings(crf=23))
        encoded = read_frames(path)
        clips.append((_store_clip(user, encoded, payload), encoded, payload))
    say(f"{'variant':34} {'copies':>6} {'watermark':>9} {'fingerprint':>11} {'either':>6}")
    totals = {"copies": 0, "watermark": 0, "fingerprint": 0, "either": 0}
    by_variant: dict[str, list[int]] = {}
    for clip, encoded, payload in clips[:4]:
        for name, copy in variants(encoded, work):
            by_mark = watermark.decode(copy, key).payload == payload
            matches = _lookup(copy)
            by_print = bool(matches) and matches[0]["clip_id"] == clip.id
            row = by_variant.setdefault(name, [0, 0, 0, 0])
            row[0] += 1
            row[1] += by_mark
            row[2] += by_print
            row[3] += by_mark or by_print
    for name, (copies, marks, prints, either) in by_variant.items():
        say(f"{name:34} {copies:>6} {marks:>9} {prints:>11} {either:>6}")
        totals["copies"] += copies
        totals["watermark"] += marks
        totals["fingerprint"] += prints
        totals["either"] += either
    false = 0
    for index, prompt in enumerate(UNRELATED):
        frames = _render(engine, prompt, seed=100 + index)
        false += bool(_lookup(frames))
        false += watermark.decode(frames, key).payload is not None
    copies = totals["copies"]
    say(
        f"recall: watermark {totals['watermark']}/{copies}, fingerprint "
        f"{totals['fingerprint']}/{copies}, either {totals['either']}/{copies}; "
        f"false matches on {len(UNRELATED)} unrelated clips: {false}"
    )
    return {"user": user, "clips": clips}


def seed_million(count: int, user) -> float:
    """``count`` completed jobs with clips and 4 random fingerprints each, set-based SQL."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS fingerprint_bands_gin")
        cursor.execute(
            """
            INSERT INTO generation_generationjob (
                id, user_id, kind, prompt, model, engine, engine_version, seconds, size, seed,
                priority, params, params_hash, input_reference, variant_index, annotations,
                status, stage, progress, error_code, error_message, error_param,
                counts_against_quota, lease_owner, intermediate, created_at, completed_at)
            SELECT gen_random_uuid(), %s, 'create', 'seeded', 'sora-2', 'previs', '', 4,
                   '720x1280', n, 5, '{}', '', '', 0, '{}', 'completed', 'done', 100, '', '', '',
                   true, '', '', now(), now()
            FROM generate_series(1, %s) AS n
            """,
            [user.pk, count],
        )
        cursor.execute(
            """
            INSERT INTO generation_clip (
                id, job_id, user_id, video, thumbnail, spritesheet, metadata, duration_s,
                width, height, bytes, sha256, manifest, watermark, created_at, removal_reason,
                audience, allow_remix, hold_reason, age_restricted, labels)
            SELECT gen_random_uuid(), j.id, j.user_id, '', '', '', '', 4, 720, 1280, 0, '',
                   '{"state": "trusted"}', decode(lpad(to_hex(j.seed), 16, '0'), 'hex'), now(),
                   '', 'only_me', true, '', false, '[]'
            FROM generation_generationjob j WHERE j.prompt = 'seeded'
            """
        )
        cursor.execute(
            """
            INSERT INTO generation_clipfingerprint (clip_id, second, hash, quality, bands)
            SELECT c.id, s, h.hash, 100,
                   ARRAY(SELECT (i << 16) | (get_byte(h.hash, 2 * i) << 8)
                                | get_byte(h.hash, 2 * i + 1)
                         FROM generate_series(0, 15) AS i)
            FROM generation_clip c
            JOIN generation_generationjob j ON j.id = c.job_id AND j.prompt = 'seeded'
            CROSS JOIN generate_series(0, 3) AS s
            CROSS JOIN LATERAL (
                SELECT decode(md5(c.id::text || s) || md5(s || c.id::text), 'hex') AS hash
            ) AS h
            """
        )
        cursor.execute(
            "CREATE INDEX fingerprint_bands_gin ON generation_clipfingerprint USING gin (bands)"
        )
        cursor.execute("ANALYZE generation_clipfingerprint")
        cursor.execute("ANALYZE generation_clip")
    return time.perf_counter() - started


def scan_baseline(hashes) -> float:
    """Every stored hash compared with every query hash: what the index avoids."""
    from django.db import connection

    from generation.provenance.fingerprint import MATCH_DISTANCE

    bits = ["".join(f"{b:08b}" for b in h.hash) for h in hashes]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT clip_id FROM generation_clipfingerprint f, unnest(%s::text[]) AS q(bits) "
            "WHERE bit_count(f.hash_bits # q.bits::bit(256)) <= %s",
            [bits, MATCH_DISTANCE],
        )
        cursor.fetchall()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    with common.bench_database(), tempfile.TemporaryDirectory() as tmp:
        from django.conf import settings

        from bench.media_pipeline import synthetic_clip
        from bench.watermark import read_frames
        from generation.engines.previs import PreviSEngine
        from generation.media.encode import EncodeSettings, encode_mp4
        from generation.pipeline import signing_credentials
        from generation.provenance.c2pa_sign import ClipManifest, SoftBinding, sign_mp4
        from generation.provenance.fingerprint import fingerprint_frames
        from generation.provenance.watermark import ALG, clip_payload
        from generation.verification import media_verify

        work = Path(tmp)
        key = settings.GENERATION_WATERMARK_KEY.encode()
        engine = PreviSEngine(device="cpu")
        engine.warm_up()
        state = recall_table(engine, say, work, key)
        user, clips = state["user"], state["clips"]

        seed_s = seed_million(args.clips, user)
        say(f"fingerprint index: {args.clips:,} clips x 4 s seeded and indexed in {seed_s:.0f} s")
        queries = {
            "a re-encoded copy of an indexed clip": fingerprint_frames(clips[0][1], 24),
            "a clip that is not indexed": fingerprint_frames(
                _render(engine, UNRELATED[0], seed=100), 24
            ),
        }
        from generation.selectors import clips_matching

        for name, hashes in queries.items():
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                found = clips_matching(hashes=hashes)
                times.append(time.perf_counter() - started)
            scan = min(scan_baseline(hashes) for _ in range(2))
            p50 = statistics.median(times)
            say(
                f"lookup, {name}: p50 {1000 * p50:.1f} ms, max {1000 * max(times):.1f} ms over "
                f"{args.clips:,} clips ({len(found)} match); sequential scan {1000 * scan:.0f} ms "
                f"= {scan / p50:.0f}x slower"
            )

        # Verification of a stripped 4 s 720x1280 clip.
        frames, audio = synthetic_clip()
        payload = clip_payload("bench-verify")
        _mark(frames, payload, key)
        raw, signed, stripped = work / "raw.mp4", work / "signed.mp4", work / "stripped.mp4"
        encode_mp4(frames, audio, raw, fps=24, sample_rate=48_000)
        encoded = read_frames(raw)
        clip = _store_clip(user, encoded, payload)
        sign_mp4(
            raw,
            signed,
            clip=ClipManifest(
                job_id=clip.job.public_id,
                title="bench",
                params={},
                soft_bindings=(SoftBinding(ALG, payload),),
            ),
            credentials=signing_credentials(),
        )
        encode_mp4(read_frames(signed), None, stripped, fps=24, settings=EncodeSettings(crf=28))
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            report = media_verify(path=stripped)
            timings.append(time.perf_counter() - started)
        assert report["clip"]["id"] == clip.job.public_id, report["reasons"]
        assert report["verdict"] == "identified", report["reasons"]
        warm = statistics.median(timings[1:])
        say(
            f"verify a stripped 4 s 720x1280 clip: {warm:.2f} s warm (p50 of 4), "
            f"{timings[0]:.2f} s for the first request (starts the reader process); "
            f"{warm / SECONDS:.2f}x the clip's duration; target <= 2 s"
        )
    return lines


if __name__ == "__main__":
    common.configure()
    main()
