"""Precision and recall of the input classifier on a labelled set of prompts.

Each row is ``{"text", "label", "variant"}``: ``label`` is a policy category or ``none``;
``variant`` says how the text is written (plain, paraphrase, leet, spacing, homoglyph). A
prompt about minors is also sexual: flagging it as ``sexual`` is not counted as a false positive.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

ALSO = {"minors": {"sexual"}, "harassment": {"self_harm"}, "self_harm": {"harassment"}}


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluate(rows: list[dict], *, classify=None) -> dict:
    from moderation.classifiers.text import classify as default_classify

    classify = classify or default_classify
    counts = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    variants = defaultdict(lambda: {"caught": 0, "total": 0})
    blocked = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    misses = []
    false_alarms = []
    for row in rows:
        predicted = set(classify([row["text"]]).categories)
        label = row["label"]
        harmful = label != "none"
        if harmful:
            variant = variants[row["variant"]]
            variant["total"] += 1
            variant["caught"] += int(label in predicted)
            if label in predicted:
                counts[label]["tp"] += 1
            else:
                counts[label]["fn"] += 1
                misses.append(row | {"predicted": sorted(predicted)})
        for category in predicted - {label} - ALSO.get(label, set()):
            counts[category]["fp"] += 1
        if not harmful and predicted:
            false_alarms.append(row | {"predicted": sorted(predicted)})
        key = ("tp" if predicted else "fn") if harmful else ("fp" if predicted else "tn")
        blocked[key] += 1
    table = {}
    for category, c in sorted(counts.items()):
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        table[category] = {**c, "precision": round(precision, 3), "recall": round(recall, 3)}
    return {
        "categories": table,
        "variants": {
            name: {**v, "recall": round(v["caught"] / v["total"], 3)}
            for name, v in sorted(variants.items())
        },
        "blocked": blocked,
        "misses": misses,
        "false_alarms": false_alarms,
    }


def format_report(result: dict) -> str:
    lines = ["category            tp  fp  fn  precision  recall"]
    for category, c in result["categories"].items():
        lines.append(
            f"{category:<18} {c['tp']:>3} {c['fp']:>3} {c['fn']:>3}  {c['precision']:>9.3f}"
            f"  {c['recall']:>6.3f}"
        )
    lines.append("")
    lines.append("variant       caught/total  recall")
    for name, v in result["variants"].items():
        lines.append(f"{name:<13} {v['caught']:>5}/{v['total']:<6}  {v['recall']:.3f}")
    b = result["blocked"]
    lines.append("")
    lines.append(
        f"any flag: tp={b['tp']} fp={b['fp']} fn={b['fn']} tn={b['tn']} "
        f"(harmful caught {b['tp']}/{b['tp'] + b['fn']}, benign flagged {b['fp']}/"
        f"{b['fp'] + b['tn']})"
    )
    for row in result["misses"]:
        lines.append(
            f"missed [{row['label']}/{row['variant']}] {row['text']!r} -> {row['predicted']}"
        )
    for row in result["false_alarms"]:
        lines.append(f"false alarm [{row['variant']}] {row['text']!r} -> {row['predicted']}")
    return "\n".join(lines)
