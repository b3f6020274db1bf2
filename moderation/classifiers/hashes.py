"""Hash-bank matching: a clip's PDQ hashes against every enabled bank's banned hashes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moderation.models import BankedHash, HashBank


@dataclass
class BankMatch:
    bank: str
    action: str
    category: str
    distance: int
    threshold: int
    second: int
    banked_id: int


def distances(banked: np.ndarray, digest: bytes) -> np.ndarray:
    """Hamming distance from ``digest`` to every row of ``banked`` ((n, 32) uint8)."""
    query = np.frombuffer(digest, np.uint8)
    return np.unpackbits(banked ^ query, axis=-1).sum(axis=-1)


def match(hashes: list[tuple[int, bytes]]) -> list[BankMatch]:
    """Every enabled bank with a hash within its threshold of one of ``hashes`` (second,
    digest); the closest match per bank. A brute-force XOR over the bank: 32 bytes a hash, so
    a million banked hashes is 32 MB and a few milliseconds per clip second."""
    if not hashes:
        return []
    banks = {bank.pk: bank for bank in HashBank.objects.filter(enabled=True)}
    if not banks:
        return []
    rows = list(BankedHash.objects.filter(bank_id__in=banks).values_list("pk", "bank_id", "hash"))
    if not rows:
        return []
    banked = np.frombuffer(b"".join(bytes(r[2]) for r in rows), np.uint8).reshape(-1, 32)
    best: dict[int, BankMatch] = {}
    for second, digest in hashes:
        found = distances(banked, digest)
        for index in np.flatnonzero(found <= max(b.threshold for b in banks.values())):
            pk, bank_id, _ = rows[int(index)]
            bank = banks[bank_id]
            distance = int(found[index])
            if distance > bank.threshold:
                continue
            if bank_id not in best or distance < best[bank_id].distance:
                best[bank_id] = BankMatch(
                    bank.name, bank.action, bank.category, distance, bank.threshold, second, pk
                )
    return list(best.values())
