"""Re-checks every consent-ledger chain: hashes, links, positions and signatures."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cameo.ledger import ledger_verify_all


class Command(BaseCommand):
    help = "Verifies the whole consent ledger and reports the first broken link (exit 1)."

    def handle(self, *args, **options):
        chains, entries, broken = ledger_verify_all()
        if broken is not None:
            raise CommandError(f"consent ledger broken at {broken}")
        self.stdout.write(f"consent ledger intact: {chains} chain(s), {entries} entries")
