"""Precision and recall of the input classifier on a labelled prompt set."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from moderation.evaluation import evaluate, format_report, load


class Command(BaseCommand):
    help = "Evaluate the input classifier on a labelled JSONL set (text, label, variant)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--file",
            type=Path,
            default=Path(settings.BASE_DIR) / "tests" / "moderation" / "evalset.jsonl",
        )
        parser.add_argument("--json", action="store_true", help="print the raw result as JSON")

    def handle(self, *args, **options):
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        result = evaluate(load(path))
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
        else:
            self.stdout.write(format_report(result))
