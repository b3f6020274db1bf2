"""Operate hash banks from the shell: create, add hashes (values or files), enable/disable."""

from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from core.errors import MontageError
from moderation import services
from moderation.models import HashBank


class Command(BaseCommand):
    help = (
        "Hash banks: list | create NAME | add NAME (--hash HEX ... | --file PATH ...) | "
        "enable NAME | disable NAME"
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["create", "add", "enable", "disable", "list"])
        parser.add_argument("name", nargs="?")
        parser.add_argument("--hash", action="append", default=[])
        parser.add_argument("--file", action="append", default=[], type=Path)
        parser.add_argument("--threshold", type=int, default=31)
        parser.add_argument("--hold", action="store_true", help="hold matches instead of blocking")
        parser.add_argument("--note", default="")

    def handle(self, *args, **o):
        if o["action"] == "list":
            for bank in HashBank.objects.order_by("name"):
                self.stdout.write(
                    f"{bank.name}\t{'on' if bank.enabled else 'off'}\t{bank.threshold}\t"
                    f"{bank.action}\t{bank.hashes.count()}"
                )
            return
        if not o["name"]:
            raise CommandError("name is required")
        try:
            self._run(o)
        except MontageError as exc:
            raise CommandError(str(exc.detail)) from exc

    def _run(self, o):
        from moderation.models import StaffRole

        operator = StaffRole.objects.filter(role="admin").select_related("user").first()
        actor = _Operator() if operator is None else operator.user
        if o["action"] == "create":
            services.hash_bank_create(
                name=o["name"],
                actor=actor,
                threshold=o["threshold"],
                action="hold" if o["hold"] else "block",
            )
            self.stdout.write(f"created {o['name']}")
            return
        bank = HashBank.objects.filter(name=o["name"]).first()
        if bank is None:
            raise CommandError(f"no bank {o['name']!r}")
        if o["action"] in ("enable", "disable"):
            services.hash_bank_update(bank=bank, actor=actor, enabled=o["action"] == "enable")
            self.stdout.write(f"{bank.name}: {o['action']}d")
            return
        digests = [services.parse_pdq_hex(h) for h in o["hash"]]
        for path in o["file"]:
            upload = SimpleUploadedFile(path.name, path.read_bytes())
            digests += services.hashes_from_file(upload)
        if not digests:
            raise CommandError("give --hash or --file")
        added = services.hash_bank_add(bank=bank, digests=digests, actor=actor, note=o["note"])
        self.stdout.write(f"{bank.name}: {added} hash(es) added")


class _Operator:
    """The shell operator: acts as an admin (whoever runs manage.py owns the deployment)."""

    pk = "operator"
    is_authenticated = True
    is_active = True
    is_superuser = True
    is_staff = True
