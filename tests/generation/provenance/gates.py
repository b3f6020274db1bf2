"""A gate for the provenance tests that records consent references on a job at creation the
way the cameo app's consent gate does, so that the manifest path can be checked on its own."""

from __future__ import annotations

LEDGER_ENTRY = "9f" * 32


def record_consent(job, phase: str) -> None:
    if phase == "create":
        job.annotations = {
            **job.annotations,
            "consent": [
                {
                    "ledger_entry_id": LEDGER_ENTRY,
                    "cameo_id": "cameo_0192f3a4b5c6d7e8f9a0b1c2d3e4f5a6",
                    "details": {"owner": "ava", "action": "use"},
                }
            ],
        }
