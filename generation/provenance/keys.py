"""Signing credentials for C2PA manifests.

Development: :func:`dev_credentials` makes an ES256 chain (a self-signed root CA and an
end-entity leaf it issued) the first time it is called for a directory and reuses it after,
so every clip a developer makes verifies against the same root. Production:
:func:`load_credentials` reads a certificate chain (leaf first, then intermediates) and its
private key from files an operator provisions.

Both return :class:`SigningCredentials`; anything else with ``make_signer()`` and
``trust_anchors_pem`` (an HSM or KMS signing callback, for instance) can stand in for it.

What c2pa-rs 0.91 (c2pa-python 0.38.1) requires of the leaf, measured here: a critical
``digitalSignature`` key usage, an Authority Key Identifier, an extended key usage from its
allowed list (``emailProtection`` passes with default settings; ``documentSigning`` and the
C2PA claim-signing EKU pass only when the trust configuration lists them, which
:data:`ALLOWED_EKUS` does), and ``CA:FALSE``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

C2PA_CLAIM_SIGNING = ObjectIdentifier("1.3.6.1.4.1.62558.2.1")
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# c2pa-rs's own accept-list plus the C2PA claim-signing EKU; the reader and the signer both
# pass this as ``trust.trust_config`` so production certificates with either EKU validate.
ALLOWED_EKUS = (
    ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string,
    DOCUMENT_SIGNING.dotted_string,
    C2PA_CLAIM_SIGNING.dotted_string,
    ExtendedKeyUsageOID.TIME_STAMPING.dotted_string,
    ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string,
    "1.3.6.1.4.1.311.76.59.1.9",  # Microsoft's C2PA signing EKU
)

ROOT_CERT, ROOT_KEY = "root.pem", "root.key"
LEAF_CERT, LEAF_KEY = "signer.pem", "signer.key"
ROOT_LIFETIME = dt.timedelta(days=20 * 365)
LEAF_LIFETIME = dt.timedelta(days=2 * 365)
# A dev leaf this close to expiry is re-issued from the same root, so clips signed before and
# after both verify against the one root.
RENEW_BEFORE = dt.timedelta(days=30)


class SigningConfigurationError(Exception):
    """The configured certificate or key cannot sign C2PA manifests; the message says why."""


@dataclass(frozen=True)
class SigningCredentials:
    # Leaf first, then intermediates, PEM: the order c2pa's ``sign_cert`` expects.
    cert_chain_pem: bytes
    # Unencrypted PKCS#8 PEM, as the c2pa signer takes it.
    private_key_pem: bytes
    alg: str
    # Roots this deployment trusts for its own clips (the dev root in development).
    trust_anchors_pem: bytes | None = None
    # An RFC 3161 time-stamp authority; without one, validity ends with the certificate's.
    tsa_url: str | None = None

    @cached_property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.cert_chain_pem)[0]

    def make_signer(self) -> c2pa.Signer:
        """A fresh c2pa ``Signer``; the caller closes it."""
        return c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(self.alg, self.cert_chain_pem, self.private_key_pem, self.tsa_url)
        )


@dataclass(frozen=True)
class CallbackCredentials:
    """Credentials whose private key never enters this process: ``sign(data) -> signature``
    is called for each manifest (an HSM, a cloud KMS, a signing service). The signature is
    what C2PA expects for ``alg``: for ECDSA DER or raw r||s (c2pa accepts both, as KMS APIs
    return DER), for Ed25519 the 64 signature bytes, for PS256 the RSASSA-PSS signature."""

    cert_chain_pem: bytes
    sign: Callable[[bytes], bytes]
    alg: str
    trust_anchors_pem: bytes | None = None
    tsa_url: str | None = None

    @cached_property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.cert_chain_pem)[0]

    def make_signer(self) -> c2pa.Signer:
        return c2pa.Signer.from_callback(
            self.sign,
            getattr(c2pa.C2paSigningAlg, self.alg.upper()),
            self.cert_chain_pem.decode(),
            self.tsa_url,
        )


def callback_credentials(
    cert_chain_path: str | os.PathLike,
    sign: Callable[[bytes], bytes],
    *,
    trust_anchors_path: str | os.PathLike | None = None,
    tsa_url: str | None = None,
) -> CallbackCredentials:
    """Credentials for a key held elsewhere: the leaf's chain from a file, the signing done by
    ``sign``. The leaf is checked like any other; its public key decides the algorithm."""
    try:
        chain = x509.load_pem_x509_certificates(Path(cert_chain_path).read_bytes())
    except ValueError as exc:
        raise SigningConfigurationError(f"the certificate chain is not PEM: {exc}") from exc
    problems = certificate_problems(chain[0])
    if problems:
        raise SigningConfigurationError("; ".join(problems))
    alg = algorithm_for(chain[0].public_key())
    return CallbackCredentials(
        cert_chain_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain),
        sign=sign,
        alg=alg,
        trust_anchors_pem=Path(trust_anchors_path).read_bytes() if trust_anchors_path else None,
        tsa_url=tsa_url,
    )


def with_extra_anchors(credentials, extra_pem: bytes | None):
    """``credentials`` also trusting ``extra_pem`` (the roots of earlier signing chains, kept
    after a rotation so that clips signed before it still verify as trusted)."""
    if not extra_pem:
        return credentials
    current = credentials.trust_anchors_pem or b""
    joined = current.rstrip(b"\n") + b"\n" + extra_pem if current else extra_pem
    return dataclasses.replace(credentials, trust_anchors_pem=joined)


def algorithm_for(key) -> str:
    """The C2PA signing algorithm for a private key, or for the public key of a certificate
    whose private key is held elsewhere."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        by_curve = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in by_curve:
            return by_curve[key.curve.name]
        raise SigningConfigurationError(f"EC curve {key.curve.name} is not allowed by C2PA")
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise SigningConfigurationError("RSA signing keys must be at least 2048 bits")
        return "ps256"
    raise SigningConfigurationError(f"unsupported signing key type {type(key).__name__}")


def certificate_problems(cert: x509.Certificate, *, now: dt.datetime | None = None) -> list[str]:
    """Why ``cert`` cannot be a C2PA signing leaf; empty when it can."""
    now = now or dt.datetime.now(dt.UTC)
    problems = []
    ext = cert.extensions
    try:
        if ext.get_extension_for_class(x509.BasicConstraints).value.ca:
            problems.append("the signing certificate is a CA; it must be an end-entity (CA:FALSE)")
    except x509.ExtensionNotFound:
        pass
    try:
        usage = ext.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            problems.append("key usage lacks digitalSignature")
    except x509.ExtensionNotFound:
        problems.append("no key usage extension (digitalSignature is required)")
    try:
        ekus = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
        if not {oid.dotted_string for oid in ekus} & set(ALLOWED_EKUS):
            problems.append(f"no extended key usage C2PA accepts ({', '.join(ALLOWED_EKUS)})")
    except x509.ExtensionNotFound:
        problems.append("no extended key usage extension")
    if cert.issuer != cert.subject:
        try:
            ext.get_extension_for_class(x509.AuthorityKeyIdentifier)
        except x509.ExtensionNotFound:
            problems.append("no authority key identifier")
    else:
        problems.append("the signing certificate is self-signed; C2PA needs a CA-issued leaf")
    if cert.not_valid_after_utc <= now:
        problems.append(f"the signing certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    if cert.not_valid_before_utc > now:
        problems.append("the signing certificate is not valid yet")
    return problems


def _pkcs8(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _spki(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _same_key(cert: x509.Certificate, key) -> bool:
    return _spki(cert.public_key()) == _spki(key.public_key())


def _subject_key_id(cert: x509.Certificate) -> bytes:
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    return aki.key_identifier


def _credentials(chain_pem: bytes, key_pem: bytes, *, password: bytes | None = None, **extra):
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise SigningConfigurationError(f"the certificate chain is not PEM: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=password)
    except (ValueError, TypeError) as exc:
        raise SigningConfigurationError(f"the private key cannot be loaded: {exc}") from exc
    if not _same_key(chain[0], key):
        raise SigningConfigurationError(
            "the private key does not belong to the first certificate of the chain (the leaf "
            "must come first, then intermediates)"
        )
    problems = certificate_problems(chain[0])
    if problems:
        raise SigningConfigurationError("; ".join(problems))
    pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain)
    return SigningCredentials(
        cert_chain_pem=pem, private_key_pem=_pkcs8(key), alg=algorithm_for(key), **extra
    )


def load_credentials(
    cert_chain_path: str | os.PathLike,
    private_key_path: str | os.PathLike,
    *,
    trust_anchors_path: str | os.PathLike | None = None,
    key_password: bytes | None = None,
    tsa_url: str | None = None,
) -> SigningCredentials:
    """Production credentials from files: a PEM chain (leaf, then intermediates), its PEM
    private key (PKCS#8 or SEC1, optionally encrypted), and optionally the PEM roots to trust.
    Raises :class:`SigningConfigurationError` when the leaf cannot sign C2PA manifests."""
    anchors = Path(trust_anchors_path).read_bytes() if trust_anchors_path else None
    return _credentials(
        Path(cert_chain_path).read_bytes(),
        Path(private_key_path).read_bytes(),
        password=key_password,
        trust_anchors_pem=anchors,
        tsa_url=tsa_url,
    )


# --- Development chain -----------------------------------------------------------------


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Workers and the web process may all reach first use at once; only one may create.
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Montage (development)"),
        ]
    )


def _make_root(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Montage Development Root CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + ROOT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    root: x509.Certificate, root_key: ec.EllipticCurvePrivateKey, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Montage Development Signer"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(min(now + LEAF_LIFETIME, root.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            # emailProtection passes c2pa's default EKU list; claim signing says what it is for.
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, C2PA_CLAIM_SIGNING]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    return cert, key


def dev_credentials(directory: str | os.PathLike) -> SigningCredentials:
    """The development chain under ``directory`` (e.g. ``<data>/signing``): created on first
    use, reused afterwards; the leaf is re-issued from the same root when near expiry."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = dt.datetime.now(dt.UTC)
    pem = serialization.Encoding.PEM
    with _locked(directory):
        root_path, root_key_path = directory / ROOT_CERT, directory / ROOT_KEY
        if root_path.exists() and root_key_path.exists():
            root = x509.load_pem_x509_certificate(root_path.read_bytes())
            root_key = serialization.load_pem_private_key(root_key_path.read_bytes(), None)
        else:
            root, root_key = _make_root(now)
            _write_atomic(root_key_path, _pkcs8(root_key), 0o600)
            _write_atomic(root_path, root.public_bytes(pem), 0o644)
            for stale in (directory / LEAF_CERT, directory / LEAF_KEY):
                stale.unlink(missing_ok=True)

        leaf_path, leaf_key_path = directory / LEAF_CERT, directory / LEAF_KEY
        leaf = None
        if leaf_path.exists() and leaf_key_path.exists():
            leaf = x509.load_pem_x509_certificate(leaf_path.read_bytes())
            leaf_key = serialization.load_pem_private_key(leaf_key_path.read_bytes(), None)
            # A crash between writing the key and the certificate leaves a mismatched pair.
            if (
                not _same_key(leaf, leaf_key)
                or _authority_key_id(leaf) != _subject_key_id(root)
                or leaf.not_valid_after_utc - now < RENEW_BEFORE
            ):
                leaf = None
        if leaf is None:
            leaf, leaf_key = _make_leaf(root, root_key, now)
            _write_atomic(leaf_key_path, _pkcs8(leaf_key), 0o600)
            _write_atomic(leaf_path, leaf.public_bytes(pem), 0o644)
        chain_pem = leaf_path.read_bytes()
        key_pem = leaf_key_path.read_bytes()
    return _credentials(chain_pem, key_pem, trust_anchors_pem=root.public_bytes(pem))
