"""Key management in use: a key held outside the process (HSM/KMS callback) signs manifests
that validate, and after a rotation to a new chain, clips signed before it still verify as
trusted once the old root is kept among the anchors — and only then."""

from __future__ import annotations

import io

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from generation import pipeline
from generation.media.encode import EncodeSettings, encode_mp4
from generation.provenance.c2pa_sign import ClipManifest, read_manifest, sign_mp4
from generation.provenance.keys import (
    SigningConfigurationError,
    callback_credentials,
    dev_credentials,
    with_extra_anchors,
)
from tests.generation.media.helpers import moving_clip, tone

MANIFEST = ClipManifest(job_id="video_rotation", title="t", params={"prompt": "p"})


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    path = tmp_path_factory.mktemp("rotation") / "clip.mp4"
    encode_mp4(
        moving_clip(frames=12, width=160, height=288),
        tone(0.5),
        path,
        settings=EncodeSettings(preset="ultrafast"),
    )
    return path


def _signed(mp4, credentials) -> bytes:
    out = io.BytesIO()
    sign_mp4(mp4, out, clip=MANIFEST, credentials=credentials)
    return out.getvalue()


def test_a_signing_callback_signs_without_the_key_in_the_process(mp4, tmp_path):
    dev = dev_credentials(tmp_path / "hsm")
    # Stands in for the HSM: the key lives only inside this closure; the service sees bytes.
    held = serialization.load_pem_private_key(dev.private_key_pem, None)
    calls = []

    def sign(data: bytes) -> bytes:
        calls.append(len(data))
        return held.sign(data, ec.ECDSA(hashes.SHA256()))

    (tmp_path / "chain.pem").write_bytes(dev.cert_chain_pem)
    (tmp_path / "roots.pem").write_bytes(dev.trust_anchors_pem)
    credentials = callback_credentials(
        tmp_path / "chain.pem", sign, trust_anchors_path=tmp_path / "roots.pem"
    )
    assert credentials.alg == "es256"
    data = _signed(mp4, credentials)
    assert calls, "the callback was never asked to sign"
    assert read_manifest(data, dev.trust_anchors_pem)["state"] == "trusted"


def test_a_callback_certificate_must_still_be_a_c2pa_leaf(tmp_path):
    dev = dev_credentials(tmp_path / "ca")
    root_only = dev.trust_anchors_pem  # a CA certificate: not an end-entity signing leaf
    (tmp_path / "root.pem").write_bytes(root_only)
    with pytest.raises(SigningConfigurationError, match="end-entity"):
        callback_credentials(tmp_path / "root.pem", lambda data: b"")


def test_old_clips_verify_after_a_rotation_while_the_old_root_is_kept(mp4, tmp_path):
    old = dev_credentials(tmp_path / "2025")
    new = dev_credentials(tmp_path / "2026")
    before = _signed(mp4, old)
    after = _signed(mp4, new)
    rotated = with_extra_anchors(new, old.trust_anchors_pem)
    assert read_manifest(before, rotated.trust_anchors_pem)["state"] == "trusted"
    assert read_manifest(after, rotated.trust_anchors_pem)["state"] == "trusted"
    # Without the old root, the old clip is still intact but no longer vouched for.
    assert read_manifest(before, new.trust_anchors_pem)["state"] == "valid"


def test_the_service_picks_up_extra_anchors_and_a_callback_from_settings(mp4, tmp_path, settings):
    old = dev_credentials(tmp_path / "old")
    current = dev_credentials(tmp_path / "current")
    (tmp_path / "old-roots.pem").write_bytes(old.trust_anchors_pem)
    (tmp_path / "chain.pem").write_bytes(current.cert_chain_pem)
    (tmp_path / "roots.pem").write_bytes(current.trust_anchors_pem)
    (tmp_path / "key.pem").write_bytes(current.private_key_pem)
    settings.GENERATION_SIGNING_CERT = str(tmp_path / "chain.pem")
    settings.GENERATION_SIGNING_KEY = ""
    settings.GENERATION_SIGNING_CALLBACK = "tests.generation.provenance.test_rotation.kms_sign"
    settings.GENERATION_TRUST_ANCHORS = str(tmp_path / "roots.pem")
    settings.GENERATION_TRUST_ANCHORS_EXTRA = str(tmp_path / "old-roots.pem")
    _KMS["key"] = current.private_key_pem
    pipeline.signing_credentials_reset()
    try:
        credentials = pipeline.signing_credentials()
        data = _signed(mp4, credentials)
        assert read_manifest(data, credentials.trust_anchors_pem)["state"] == "trusted"
        assert read_manifest(_signed(mp4, old), credentials.trust_anchors_pem)["state"] == "trusted"
    finally:
        pipeline.signing_credentials_reset()


_KMS: dict[str, bytes] = {}


def kms_sign(data: bytes) -> bytes:
    """A signing callback named in settings, as an operator's KMS adapter would be."""
    key = serialization.load_pem_private_key(_KMS["key"], None)
    return key.sign(data, ec.ECDSA(hashes.SHA256()))
