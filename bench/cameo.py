"""Cameo benchmark: what consent costs a job, and how fast the consent ledger verifies.

Run: ``python -m bench.cameo [--jobs N] [--entries N] [--repeat N]``.

Real PostgreSQL, in the benchmark's own database (``bench.common``). Each figure has a baseline
measured in the same run:

- creating a job whose prompt names a cameo (``generation.services.job_create`` with the
  consent gate: shared row lock, permission check, signed ledger entry, appearance row,
  notification, annotations) against the same call for a prompt without one, interleaved in
  rounds; each creation's transaction is rolled back, so nothing is enqueued and every round
  starts from the same rows;
- re-verifying a chain of ``--entries`` entries as ``manage.py verify_consent_ledger`` does
  (read, canonical JSON, SHA-256, Ed25519) against the signature checks alone on the same
  entries held in memory: the cryptographic floor of any verifier.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt

from bench.common import bench_database, emit, interleaved_best


class _Rollback(Exception):
    pass


def _create_jobs(user, prompt: str, count: int) -> float:
    import time

    from django.db import transaction

    from generation.services import job_create, job_spec_build

    elapsed = 0.0
    for _ in range(count):
        started = time.perf_counter()
        try:
            with transaction.atomic():
                spec = job_spec_build(
                    prompt=prompt,
                    model=None,
                    seconds=1,
                    size="512x512",
                    native=True,
                    allowed_seconds=None,
                )
                job_create(user=user, spec=spec)
                elapsed += time.perf_counter() - started
                raise _Rollback
        except _Rollback:
            pass
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    lines: list[str] = []
    with bench_database():
        from django.conf import settings
        from django.db import transaction

        from accounts.models import User
        from cameo import ledger
        from cameo.models import Cameo, CameoKind, CameoStatus, LedgerEntry

        settings.GENERATION_GATES = ["cameo.gates.consent_gate"]
        settings.GENERATION_QUOTAS = {
            band: {"daily": 10**9, "concurrent": 10**9} for band in ("adult", "teen")
        }
        owner = User.objects.create_user("bench_owner", birth_date=dt.date(1990, 1, 1))
        maker = User.objects.create_user("bench_maker", birth_date=dt.date(1990, 1, 1))
        cameo = Cameo.objects.create(
            owner=owner,
            kind=CameoKind.PERSON,
            handle=owner.handle,
            status=CameoStatus.VERIFIED,
            audience="everyone",
            reference_image="private/cameos/bench/frame-0.png",
        )

        n = args.jobs
        best = interleaved_best(
            args.repeat,
            {
                "with": lambda: (_create_jobs(maker, "@bench_owner waves on a beach", n), None),
                "without": lambda: (_create_jobs(maker, "a person waves on a beach", n), None),
            },
            timed=True,
        )
        with_ms = best["with"][0] / n * 1000
        without_ms = best["without"][0] / n * 1000
        emit(
            lines,
            f"cameo.job_create_with_cameo_ratio {with_ms / without_ms:.2f} "
            f"(one cameo {with_ms:.2f} ms vs none {without_ms:.2f} ms per job, best of "
            f"{args.repeat} rounds of {n})",
        )

        with transaction.atomic():
            for i in range(args.entries):
                ledger.append(cameo=cameo, actor="system", action="used", data={"n": i})
        entries = list(LedgerEntry.objects.filter(cameo=cameo).order_by("seq"))
        keys = ledger.verification_keys()

        def full() -> tuple[float, None]:
            import time

            started = time.perf_counter()
            rows = LedgerEntry.objects.filter(cameo=cameo).order_by("seq").iterator()
            broken = ledger.chain_verify(rows, cameo_id=cameo.public_id, keys=keys)
            assert broken is None, broken
            return time.perf_counter() - started, None

        def signatures_only() -> tuple[float, None]:
            import time

            started = time.perf_counter()
            for entry in entries:
                keys[entry.key_id].verify(
                    base64.b64decode(entry.signature), bytes.fromhex(entry.entry_hash)
                )
            return time.perf_counter() - started, None

        best = interleaved_best(args.repeat, {"full": full, "floor": signatures_only}, timed=True)
        rate = args.entries / best["full"][0]
        floor = args.entries / best["floor"][0]
        emit(
            lines,
            f"cameo.ledger_verify_vs_signature_floor {best['full'][0] / best['floor'][0]:.2f} "
            f"({rate:,.0f} entries/s verified from the database vs {floor:,.0f}/s signature "
            f"checks alone, chain of {args.entries})",
        )


if __name__ == "__main__":
    from bench import common

    common.configure()
    main()
