"""``manage.py verify_media FILE [FILE ...] [--json]``: the verification API's report for local
files, for operators and for anyone checking a clip by hand."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from generation.provenance.inspect import InspectionFailed, UnsupportedMedia
from generation.verification import media_verify


class Command(BaseCommand):
    help = "Verify videos or images: C2PA manifest, watermark, fingerprints, lineage, consent."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print the full JSON report."
        )

    def handle(self, *args, files, as_json: bool = False, **options):
        failed = False
        for name in files:
            try:
                report = media_verify(path=name)
            except FileNotFoundError as exc:
                raise CommandError(f"{name}: no such file") from exc
            except (UnsupportedMedia, InspectionFailed) as exc:
                self.stderr.write(f"{name}: cannot be read: {exc}")
                failed = True
                continue
            self.stdout.write(_dump(report) if as_json else _summary(name, report))
            failed |= report["verdict"] in ("tampered", "unknown")
        if failed:
            raise SystemExit(1)


def _dump(report: dict) -> str:
    return json.dumps(report, indent=2, default=str)


def _summary(name: str, report: dict) -> str:
    manifest, mark, clip = report["manifest"], report["watermark"], report["clip"]
    lines = [f"{name}: {report['verdict'].upper()}"]
    lines += [f"  {reason}" for reason in report["reasons"]]
    lines.append(
        f"  manifest:  {manifest['state']}"
        + (
            f" (job {manifest['job_id']}, signer {manifest['signer']})"
            if manifest["present"]
            else ""
        )
    )
    lines.append(
        f"  watermark: {mark['payload'] or 'none'}"
        + (f" -> {mark['clip']['id']}" if mark["clip"] else "")
    )
    matches = report["fingerprint"]["matches"]
    lines.append(
        f"  fingerprints: {len(matches)} matching clip(s)"
        + (f", best {matches[0]['clip']['id']}" if matches else "")
    )
    if clip:
        lines.append(f"  clip:      {clip['id']} created {clip['created_at']}")
    pixels = report["pixels"]
    if pixels and pixels.get("compared_seconds"):
        lines.append(
            f"  pixels:    median PDQ distance {pixels['median_distance']} over "
            f"{pixels['compared_seconds']} s" + (" — ALTERED" if pixels["altered"] else "")
        )
    for ancestor in report["lineage"]:
        lines.append(f"  parent:    {ancestor['id']} ({ancestor['kind']})")
    for entry in report["consent"]:
        lines.append(
            f"  consent:   ledger entry {entry.get('ledger_entry_id')} for {entry.get('cameo_id')}"
        )
    return "\n".join(lines)
