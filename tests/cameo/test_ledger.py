"""The consent ledger: append-only in code and in the database, hash-chained and signed, and
the verification command finds the first broken link."""

from __future__ import annotations

import itertools
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import InternalError, ProgrammingError

from cameo import ledger, services
from cameo.ledger import GENESIS, chain_verify, ledger_verify_all
from cameo.models import LedgerEntry, LedgerImmutable
from tests.cameo.helpers import actions, person_cameo
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def cameo():
    owner = UserFactory(handle="alice")
    cameo = person_cameo(owner, audience="approved")
    bob = UserFactory(handle="bob")
    grant = services.grant_create(cameo=cameo, grantee=bob, actor=owner)
    services.cameo_settings_update(cameo=cameo, actor=owner, restrictions=["politics"])
    services.grant_revoke(grant=grant, actor=owner)
    return cameo


def _entries(cameo):
    return list(LedgerEntry.objects.filter(cameo=cameo).order_by("seq"))


def test_entries_chain_from_genesis_and_verify(cameo):
    entries = _entries(cameo)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert actions(cameo) == [
        "verified",
        "audience_changed",
        "access_granted",
        "preferences_changed",
        "access_revoked",
    ]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(entries))
    assert entries[2].actor == f"user:{cameo.owner_id}"
    assert chain_verify(entries, cameo_id=cameo.public_id) is None
    assert ledger_verify_all()[2] is None


def test_code_refuses_to_change_or_delete_entries(cameo):
    entry = _entries(cameo)[0]
    entry.action = "nothing happened"
    with pytest.raises(LedgerImmutable):
        entry.save()
    with pytest.raises(LedgerImmutable):
        entry.delete()
    with pytest.raises(LedgerImmutable):
        LedgerEntry.objects.filter(cameo=cameo).update(action="x")
    with pytest.raises(LedgerImmutable):
        LedgerEntry.objects.filter(cameo=cameo).delete()
    assert actions(cameo)[0] == "verified"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE cameo_ledgerentry SET action = 'forged' WHERE cameo_id = %s",
        "DELETE FROM cameo_ledgerentry WHERE cameo_id = %s",
    ],
)
def test_the_database_refuses_updates_and_deletes(cameo, sql):
    refused = pytest.raises((InternalError, ProgrammingError), match="append-only")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [cameo.pk])
    assert len(_entries(cameo)) == 5


def _tamper(sql: str, params: list) -> None:
    """What an attacker with the database owner's rights could do: switch the trigger off."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE cameo_ledgerentry DISABLE TRIGGER cameo_ledger_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE cameo_ledgerentry ENABLE TRIGGER cameo_ledger_append_only")


@pytest.mark.parametrize(
    ("sql", "broken_seq", "reason"),
    [
        (
            'UPDATE cameo_ledgerentry SET data = \'{"grantee": "user:0"}\' '
            "WHERE cameo_id = %s AND seq = 3",
            3,
            "its contents do not match its hash",
        ),
        ("DELETE FROM cameo_ledgerentry WHERE cameo_id = %s AND seq = 2", 2, "is missing"),
        (
            "UPDATE cameo_ledgerentry SET signature = (SELECT signature FROM cameo_ledgerentry "
            "WHERE cameo_id = %s AND seq = 1) WHERE cameo_id = %s AND seq = 4",
            4,
            "bad signature",
        ),
    ],
)
def test_tampering_is_found_at_the_first_broken_link(cameo, sql, broken_seq, reason):
    other = person_cameo(UserFactory(handle="carol"))
    params = [cameo.pk] * sql.count("%s")
    _tamper(sql, params)
    _, _, broken = ledger_verify_all()
    assert broken is not None
    assert (broken.cameo_id, broken.seq) == (cameo.public_id, broken_seq)
    assert reason in broken.reason
    with pytest.raises(CommandError, match=f"{cameo.public_id} entry #{broken_seq}"):
        call_command("verify_consent_ledger")
    # An untouched chain still verifies on its own.
    assert chain_verify(_entries(other), cameo_id=other.public_id) is None


def test_a_rewritten_chain_without_the_key_fails_on_the_signature(cameo):
    """Re-hashing forged contents is not enough: the signatures are over the hashes."""
    entry = _entries(cameo)[2]
    forged = {"grantee": "user:0", "grant": entry.data["grant"]}
    digest = ledger.entry_digest(
        cameo_id=cameo.public_id,
        seq=3,
        actor=entry.actor,
        action=entry.action,
        data=forged,
        at=entry.at,
        prev=entry.prev_hash,
    )
    _tamper(
        "UPDATE cameo_ledgerentry SET data = %s::jsonb, entry_hash = %s WHERE id = %s",
        [json.dumps(forged), digest, entry.pk],
    )
    broken = chain_verify(_entries(cameo), cameo_id=cameo.public_id)
    assert (broken.seq, broken.reason) == (3, "bad signature")


def test_the_command_reports_an_intact_ledger(cameo, capsys):
    call_command("verify_consent_ledger")
    assert "consent ledger intact: 1 chain(s), 5 entries" in capsys.readouterr().out


def test_ledger_api_pages_the_chain_in_order_for_the_owner_only(cameo):
    owner = client_for(cameo.owner)
    first = owner.get(f"/api/v1/cameos/{cameo.public_id}/ledger?limit=3").json()
    assert [e["seq"] for e in first["data"]] == [1, 2, 3] and first["has_more"]
    rest = owner.get(
        f"/api/v1/cameos/{cameo.public_id}/ledger?limit=3&cursor={first['next_cursor']}"
    ).json()
    assert [e["seq"] for e in rest["data"]] == [4, 5] and not rest["has_more"]
    entry = first["data"][0]
    assert set(entry) == {
        "seq",
        "actor",
        "action",
        "data",
        "at",
        "prev_hash",
        "entry_hash",
        "signature",
        "key_id",
    }
    assert_error(
        owner.get(f"/api/v1/cameos/{cameo.public_id}/ledger?cursor=nonsense"),
        400,
        code="invalid_cursor",
        param="cursor",
    )
    bob = client_for(UserFactory())
    assert_error(
        bob.get(f"/api/v1/cameos/{cameo.public_id}/ledger"),
        404,
        code="cameo_not_found",
        param="cameo_id",
    )


def _key_file(path) -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private, public = path / "ledger.key", path / "ledger.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(private), str(public)


def test_a_rotated_key_keeps_older_entries_verifiable_only_when_listed(settings, tmp_path):
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    new_dir.mkdir()
    old_key, old_public = _key_file(old_dir)
    new_key, _ = _key_file(new_dir)
    settings.CAMEO_LEDGER_KEY = old_key
    owner = UserFactory(handle="alice")
    cameo = person_cameo(owner)
    settings.CAMEO_LEDGER_KEY = new_key
    services.cameo_settings_update(cameo=cameo, actor=owner, audience="approved")
    entries = _entries(cameo)
    assert len({e.key_id for e in entries}) == 2
    broken = chain_verify(entries, cameo_id=cameo.public_id)
    assert (broken.seq, broken.reason) == (1, f"signed by unknown key {entries[0].key_id}")
    settings.CAMEO_LEDGER_PUBLIC_KEYS = [old_public]
    assert chain_verify(entries, cameo_id=cameo.public_id) is None
