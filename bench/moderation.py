"""Moderation benchmark: the input classifier's cost and quality, output screening's cost.

Run: ``python -m bench.moderation``.

- Input screening (40 prompts of the evaluation set): prompts per second through the whole
  classifier (normalisation, rules, clauses, MiniLM embeddings, exemplar and registry
  matching), as a ratio to embedding the same prompts alone (the floor any meaning-based
  screen pays).
- Quality: precision and recall per category on tests/moderation/evalset.jsonl, and recall by
  writing variant (plain, paraphrase, l33t, spacing, homoglyphs).
- Output screening of a 4 s 720x1280 clip (the media benchmark's synthetic clip, encoded at
  the pipeline's settings): sampling one frame per second, NudeNet on each, PDQ of each, as a
  ratio to the clip's own duration (below 1: faster than real time) and to decoding alone.
- Hash banks: one clip's hashes against 100,000 banked hashes, brute-force XOR + popcount.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import django

    django.setup()
    import av

    from bench.media_pipeline import FPS, RATE, SECONDS, synthetic_clip
    from core.embeddings import embed
    from generation.media.encode import EncodeSettings, encode_mp4
    from moderation.classifiers import frames as frame_classifier
    from moderation.classifiers import hashes
    from moderation.classifiers.normalize import normalize
    from moderation.classifiers.text import classify, warm_up
    from moderation.evaluation import evaluate, format_report, load

    rows = load(ROOT / "tests" / "moderation" / "evalset.jsonl")
    # Timing on a spread of 40 of the set's prompts keeps the run short on a shared machine.
    prompts = [row["text"] for row in rows][:: max(1, len(rows) // 40)][:40]
    warm_up()
    embed(prompts[:4])
    frame_classifier.detector()

    screen_s = _best(lambda: [classify([p]) for p in prompts], args.repeat)
    embed_s = _best(lambda: [embed([normalize(p)]) for p in prompts], args.repeat)
    print(
        f"input screening: {len(prompts) / screen_s:.0f} prompts/s, "
        f"{screen_s / embed_s:.2f}x the time of embedding alone "
        f"({screen_s / len(prompts) * 1000:.1f} ms vs {embed_s / len(prompts) * 1000:.1f} ms "
        "a prompt)",
        flush=True,
    )
    print(format_report(evaluate(rows)), flush=True)

    frames, audio = synthetic_clip()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        encode_mp4(frames, audio, path, fps=FPS, sample_rate=RATE, settings=EncodeSettings())
        data = path.read_bytes()

    def decode_only():
        with av.open(io.BytesIO(data)) as container:
            for _ in container.decode(video=0):
                pass

    def screen_output():
        sampled = frame_classifier.sample_frames(data, max_frames=40)
        frame_classifier.nudity_scores(sampled)
        frame_classifier.frame_hashes(sampled)

    decode_s = _best(decode_only, args.repeat)
    output_s = _best(screen_output, args.repeat)
    print(
        f"output screening of a {SECONDS} s 720x1280 clip: {output_s:.2f} s = "
        f"{output_s / SECONDS:.2f}x real time, {output_s / decode_s:.2f}x decoding alone "
        f"({decode_s:.2f} s)",
        flush=True,
    )

    rng = np.random.default_rng(1)
    banked = rng.integers(0, 256, (100_000, 32), dtype=np.uint8)
    digests = [rng.integers(0, 256, 32, dtype=np.uint8).tobytes() for _ in range(SECONDS)]
    match_s = _best(lambda: [hashes.distances(banked, d) for d in digests], args.repeat)
    print(
        f"hash banks: {SECONDS} clip hashes against 100000 banked in {match_s * 1000:.1f} ms "
        f"({match_s / output_s:.3f}x the output screening time)",
        flush=True,
    )


if __name__ == "__main__":
    from bench import common

    common.configure()
    main()
