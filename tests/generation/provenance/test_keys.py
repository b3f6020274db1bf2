"""Signing credentials: the development chain is made once and reused, with the extensions C2PA
requires; production credentials are loaded from files and refused when they cannot sign."""

from __future__ import annotations

import multiprocessing
import stat
from concurrent.futures import ProcessPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from generation.provenance import keys
from generation.provenance.keys import (
    SigningConfigurationError,
    certificate_problems,
    dev_credentials,
    load_credentials,
)


def chain_of(credentials) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(credentials.cert_chain_pem)


def test_dev_chain_is_created_once_and_reused(tmp_path):
    first = dev_credentials(tmp_path / "signing")
    second = dev_credentials(tmp_path / "signing")
    assert second == first
    assert sorted(p.name for p in (tmp_path / "signing").iterdir()) == [
        ".lock",
        "root.key",
        "root.pem",
        "signer.key",
        "signer.pem",
    ]
    for name in ("root.key", "signer.key"):
        assert stat.S_IMODE((tmp_path / "signing" / name).stat().st_mode) == 0o600


def test_dev_leaf_has_what_c2pa_requires(tmp_path):
    credentials = dev_credentials(tmp_path)
    [leaf] = chain_of(credentials)
    root = x509.load_pem_x509_certificate(credentials.trust_anchors_pem)
    assert credentials.alg == "es256"
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"

    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.key_cert_sign
    ekus = list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ekus == [ExtendedKeyUsageOID.EMAIL_PROTECTION, keys.C2PA_CLAIM_SIGNING]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest
    leaf.verify_directly_issued_by(root)
    assert certificate_problems(leaf) == []


def test_dev_root_is_a_ca_that_signs_only_certificates(tmp_path):
    root = x509.load_pem_x509_certificate(dev_credentials(tmp_path).trust_anchors_pem)
    assert root.issuer == root.subject
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    root.verify_directly_issued_by(root)


def test_dev_leaf_near_expiry_is_reissued_by_the_same_root(tmp_path, monkeypatch):
    before = dev_credentials(tmp_path)
    monkeypatch.setattr(keys, "RENEW_BEFORE", keys.LEAF_LIFETIME * 2)
    after = dev_credentials(tmp_path)
    assert after.trust_anchors_pem == before.trust_anchors_pem
    assert after.cert_chain_pem != before.cert_chain_pem
    chain_of(after)[0].verify_directly_issued_by(
        x509.load_pem_x509_certificate(before.trust_anchors_pem)
    )


def test_a_leaf_whose_key_was_lost_mid_write_is_reissued(tmp_path):
    before = dev_credentials(tmp_path)
    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "signer.key").write_bytes(keys._pkcs8(other))
    after = dev_credentials(tmp_path)
    assert after.cert_chain_pem != before.cert_chain_pem
    assert after.trust_anchors_pem == before.trust_anchors_pem


def _chain_in(directory: str) -> bytes:
    return dev_credentials(directory).cert_chain_pem


def test_processes_starting_together_share_one_chain(tmp_path):
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=4, mp_context=context) as pool:
        chains = list(pool.map(_chain_in, [str(tmp_path)] * 8))
    assert len(set(chains)) == 1
    assert chains[0] == dev_credentials(tmp_path).cert_chain_pem


def test_production_credentials_load_from_files(tmp_path):
    dev = dev_credentials(tmp_path / "ca")
    password = b"correct horse"
    key = serialization.load_pem_private_key(dev.private_key_pem, None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(password),
    )
    (tmp_path / "chain.pem").write_bytes(dev.cert_chain_pem)
    (tmp_path / "key.pem").write_bytes(encrypted)
    (tmp_path / "roots.pem").write_bytes(dev.trust_anchors_pem)
    loaded = load_credentials(
        tmp_path / "chain.pem",
        tmp_path / "key.pem",
        trust_anchors_path=tmp_path / "roots.pem",
        key_password=password,
        tsa_url="http://tsa.example/",
    )
    assert loaded.cert_chain_pem == dev.cert_chain_pem
    # Re-encoded as the unencrypted PKCS#8 the c2pa signer takes.
    assert loaded.private_key_pem == dev.private_key_pem
    assert loaded.trust_anchors_pem == dev.trust_anchors_pem
    assert (loaded.alg, loaded.tsa_url) == ("es256", "http://tsa.example/")


def test_a_key_that_does_not_match_the_leaf_is_refused(tmp_path):
    dev_credentials(tmp_path)
    with pytest.raises(SigningConfigurationError, match="does not belong"):
        load_credentials(tmp_path / "signer.pem", tmp_path / "root.key")


def test_a_ca_certificate_cannot_sign_manifests(tmp_path):
    dev_credentials(tmp_path)
    with pytest.raises(SigningConfigurationError) as refused:
        load_credentials(tmp_path / "root.pem", tmp_path / "root.key")
    message = str(refused.value)
    assert "CA:FALSE" in message
    assert "digitalSignature" in message
    assert "extended key usage" in message
    assert "self-signed" in message


def test_unreadable_files_are_configuration_errors(tmp_path):
    (tmp_path / "chain.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    with pytest.raises(SigningConfigurationError, match="not PEM"):
        load_credentials(tmp_path / "chain.pem", tmp_path / "key.pem")
