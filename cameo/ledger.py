"""The consent ledger: append-only, hash-chained per cameo, each entry signed (Ed25519).

An entry's hash covers its cameo, position, actor, action, data, time and the previous entry's
hash; the signature covers the hash. Changing, removing or reordering any entry breaks the
chain at that point, which :func:`chain_verify` reports.

The signing key is ``settings.CAMEO_LEDGER_KEY`` (a PEM Ed25519 private key) when set, else a
key created once next to the development C2PA chain. Retired keys' public halves
(``settings.CAMEO_LEDGER_PUBLIC_KEYS``) keep older entries verifiable after a rotation.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.conf import settings
from django.db import connection

from cameo.models import Cameo, LedgerEntry, public_id

GENESIS = "0" * 64
KEY_FILE = "consent-ledger-ed25519.key"
VERSION = 1


def _raw_public(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(key: ed25519.Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def _load_private(pem: bytes) -> ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError("the consent ledger key must be an Ed25519 private key")
    return key


def _dev_key(directory: Path) -> ed25519.Ed25519PrivateKey:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / KEY_FILE
    with open(directory / ".ledger-lock", "w") as lock:
        # Web and worker processes may reach first use together; exactly one creates the key.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not path.exists():
                pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(pem)
                tmp.chmod(0o600)
                tmp.replace(path)
            return _load_private(path.read_bytes())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@cache
def _signing_key(configured: str, directory: str) -> ed25519.Ed25519PrivateKey:
    if configured:
        return _load_private(Path(configured).read_bytes())
    return _dev_key(Path(directory))


def signing_key() -> ed25519.Ed25519PrivateKey:
    return _signing_key(settings.CAMEO_LEDGER_KEY, str(settings.CAMEO_LEDGER_KEY_DIR))


def verification_keys() -> dict[str, ed25519.Ed25519PublicKey]:
    """key id -> public key: the current key and every retired one configured."""
    current = signing_key().public_key()
    keys = {key_id_of(current): current}
    for path in settings.CAMEO_LEDGER_PUBLIC_KEYS:
        with contextlib.suppress(ValueError, OSError):
            public = serialization.load_pem_public_key(Path(path).read_bytes())
            if isinstance(public, ed25519.Ed25519PublicKey):
                keys[key_id_of(public)] = public
    return keys


def canonical_time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_digest(
    *, cameo_id: str, seq: int, actor: str, action: str, data: dict, at: dt.datetime, prev: str
) -> str:
    body = {
        "v": VERSION,
        "cameo": cameo_id,
        "seq": seq,
        "actor": actor,
        "action": action,
        "data": data,
        "at": canonical_time(at),
        "prev": prev,
    }
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _lock_chain(cameo: Cameo) -> None:
    # One appender per chain at a time, until the transaction ends: two concurrent uses of a
    # popular cameo must not both claim the same position.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [0x43414D, str(cameo.pk)])


def append(*, cameo: Cameo, actor: str, action: str, data: dict | None = None) -> LedgerEntry:
    """Appends a signed entry to ``cameo``'s chain. Call inside the transaction that makes the
    change it records, so the record and the change commit (or vanish) together."""
    from django.utils import timezone

    if not connection.in_atomic_block:
        raise RuntimeError("ledger entries are appended inside the change's transaction")
    _lock_chain(cameo)
    last = (
        LedgerEntry.objects.filter(cameo=cameo).order_by("-seq").values("seq", "entry_hash").first()
    )
    seq = (last["seq"] + 1) if last else 1
    prev = last["entry_hash"] if last else GENESIS
    data = json.loads(json.dumps(data or {}, default=str))
    # Microseconds only: the stored timestamp must hash the same after a round trip.
    at = timezone.now()
    digest = entry_digest(
        cameo_id=public_id(cameo.pk),
        seq=seq,
        actor=actor,
        action=action,
        data=data,
        at=at,
        prev=prev,
    )
    key = signing_key()
    signature = base64.b64encode(key.sign(bytes.fromhex(digest))).decode()
    return LedgerEntry.objects.create(
        cameo=cameo,
        seq=seq,
        actor=actor,
        action=action,
        data=data,
        at=at,
        prev_hash=prev,
        entry_hash=digest,
        signature=signature,
        key_id=key_id_of(key.public_key()),
    )


@dataclass(frozen=True)
class Break:
    """The first link of a chain that does not verify."""

    cameo_id: str
    seq: int
    entry_id: int | None
    reason: str

    def __str__(self) -> str:
        return f"{self.cameo_id} entry #{self.seq} (row {self.entry_id}): {self.reason}"


def chain_verify(entries, *, cameo_id: str, keys=None) -> Break | None:
    """Re-checks one chain, in ``seq`` order; returns its first broken link, or None."""
    keys = keys if keys is not None else verification_keys()
    expected_prev = GENESIS
    expected_seq = 1
    for entry in entries:
        if entry.seq != expected_seq:
            missing = entry.seq > expected_seq
            reason = f"entry #{expected_seq} is missing" if missing else "position repeated"
            return Break(cameo_id, expected_seq, entry.pk, reason)
        if entry.prev_hash != expected_prev:
            return Break(cameo_id, entry.seq, entry.pk, "does not link to the entry before it")
        digest = entry_digest(
            cameo_id=cameo_id,
            seq=entry.seq,
            actor=entry.actor,
            action=entry.action,
            data=entry.data,
            at=entry.at,
            prev=entry.prev_hash,
        )
        if digest != entry.entry_hash:
            return Break(cameo_id, entry.seq, entry.pk, "its contents do not match its hash")
        key = keys.get(entry.key_id)
        if key is None:
            return Break(cameo_id, entry.seq, entry.pk, f"signed by unknown key {entry.key_id}")
        try:
            key.verify(base64.b64decode(entry.signature), bytes.fromhex(entry.entry_hash))
        except (InvalidSignature, ValueError):
            return Break(cameo_id, entry.seq, entry.pk, "bad signature")
        expected_prev = entry.entry_hash
        expected_seq += 1
    return None


def ledger_verify_all() -> tuple[int, int, Break | None]:
    """Verifies every chain. Returns (chains checked, entries checked, first break or None)."""
    keys = verification_keys()
    chains = entries_seen = 0
    cameo_ids = LedgerEntry.objects.order_by("cameo_id").values_list("cameo_id", flat=True)
    for cameo_pk in cameo_ids.distinct():
        chains += 1
        rows = LedgerEntry.objects.filter(cameo_id=cameo_pk).order_by("seq", "id").iterator()
        counted = []

        def counting(rows=rows, counted=counted):
            for row in rows:
                counted.append(1)
                yield row

        broken = chain_verify(counting(), cameo_id=public_id(cameo_pk), keys=keys)
        entries_seen += len(counted)
        if broken is not None:
            return chains, entries_seen, broken
    return chains, entries_seen, None
