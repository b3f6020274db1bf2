"""C2PA signing: a signed clip says it is AI-made, by which generator and job, validates (and is
trusted under the dev root), still plays, and any change to its bytes makes it invalid."""

from __future__ import annotations

import hashlib
import io
import json
import math

import av
import pytest

from generation.media.encode import EncodeSettings, encode_mp4
from generation.provenance.c2pa_sign import (
    CONSENT_ASSERTION,
    JOB_ASSERTION,
    SOFT_BINDING_ASSERTION,
    TRAINED_ALGORITHMIC_MEDIA,
    ClipManifest,
    ConsentReference,
    Parent,
    SoftBinding,
    UnreadableMedia,
    manifest_definition,
    params_sha256,
    read_manifest,
    sign_mp4,
)
from generation.provenance.keys import dev_credentials
from tests.generation.media.helpers import box_order, moving_clip, mp4_boxes, tone

PARAMS = {"prompt": "a red ball bounces on a beach at sunset", "seed": 42, "size": "720x1280"}


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    return dev_credentials(tmp_path_factory.mktemp("signing"))


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    encode_mp4(
        moving_clip(frames=24, width=160, height=288),
        tone(1.0),
        path,
        settings=EncodeSettings(preset="ultrafast"),
    )
    return path


@pytest.fixture(scope="module")
def clip():
    return ClipManifest(
        job_id="job_01J9ZQ", title="Red ball", params=PARAMS, engine_version="0.4.2"
    )


@pytest.fixture(scope="module")
def signed(mp4, clip, credentials, tmp_path_factory):
    out = tmp_path_factory.mktemp("signed") / "signed.mp4"
    sign_mp4(mp4, out, clip=clip, credentials=credentials)
    return out


def test_params_hash_is_sha256_of_canonical_json():
    canonical = '{"prompt":"a red ball bounces on a beach at sunset","seed":42,"size":"720x1280"}'
    assert params_sha256(PARAMS) == hashlib.sha256(canonical.encode()).hexdigest()
    assert params_sha256(dict(reversed(PARAMS.items()))) == params_sha256(PARAMS)
    assert (
        params_sha256({"prompt": "caf\u00e9"})
        == hashlib.sha256('{"prompt":"caf\u00e9"}'.encode()).hexdigest()
    )
    with pytest.raises(ValueError):
        params_sha256({"x": math.nan})
    with pytest.raises(TypeError):
        params_sha256({"x": object()})


def test_signed_clip_claims_ai_creation_by_the_generator_for_the_job(signed, clip):
    result = read_manifest(signed)
    manifest = result["active_manifest"]
    assert manifest["title"] == "Red ball"
    assert manifest["claim_generator_info"][0]["name"] == "Montage"
    [created] = result["actions"]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert created["softwareAgent"] == {"name": "Montage previs", "version": "0.4.2"}
    assert result["job"] == {
        "job_id": "job_01J9ZQ",
        "engine": {"name": "Montage previs", "version": "0.4.2"},
        "params_hash": {
            "alg": "sha256",
            "canonicalization": "json-sorted-keys-compact-utf8",
            "value": params_sha256(PARAMS),
        },
    }
    labels = [a["label"] for a in manifest["assertions"]]
    assert JOB_ASSERTION in labels
    assert CONSENT_ASSERTION not in labels
    assert SOFT_BINDING_ASSERTION not in labels


def test_signed_clip_is_valid_and_trusted_under_the_dev_root(signed, credentials, tmp_path):
    untrusted = read_manifest(signed)
    assert untrusted["state"] == "valid"
    assert untrusted["validation_state"] == "Valid"
    assert untrusted["failures"] == ["signingCredential.untrusted"]

    trusted = read_manifest(signed, credentials.trust_anchors_pem)
    assert trusted["state"] == "trusted"
    assert trusted["validation_state"] == "Trusted"
    assert trusted["failures"] == []

    stranger = dev_credentials(tmp_path / "someone-else")
    assert read_manifest(signed, stranger.trust_anchors_pem)["state"] == "valid"


def test_signed_clip_still_plays_and_keeps_faststart(signed, mp4):
    data = signed.read_bytes()
    order = box_order(data)
    assert order.index("moov") < order.index("mdat")
    with av.open(str(signed)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    assert len(data) > mp4.stat().st_size


def test_flipped_bytes_in_mdat_make_it_invalid(signed, credentials):
    data = bytearray(signed.read_bytes())
    [(_, offset, size)] = [box for box in mp4_boxes(bytes(data)) if box[0] == "mdat"]
    middle = offset + size // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    result = read_manifest(bytes(data), credentials.trust_anchors_pem)
    assert result["state"] == "invalid"
    assert result["validation_state"] == "Invalid"
    assert "assertion.bmffHash.mismatch" in result["failures"]


def test_an_edited_claim_makes_it_invalid(signed, credentials):
    data = signed.read_bytes()
    assert data.count(b"job_01J9ZQ") == 1
    forged = data.replace(b"job_01J9ZQ", b"job_01J9ZX")
    result = read_manifest(forged, credentials.trust_anchors_pem)
    assert result["state"] == "invalid"
    assert "assertion.hashedURI.mismatch" in result["failures"]


def test_a_truncated_signed_file_is_invalid_not_an_error(signed):
    data = signed.read_bytes()
    result = read_manifest(data[: len(data) // 2])
    assert result["state"] == "invalid"
    assert result["error"] or result["failures"]


def test_unsigned_and_unreadable_inputs(mp4):
    assert read_manifest(mp4)["state"] == "absent"
    assert read_manifest(mp4)["active_manifest"] is None
    with pytest.raises(UnreadableMedia):
        read_manifest(b"this is not a video at all")


def test_signs_stream_to_stream(mp4, clip, credentials):
    out = io.BytesIO()
    result = sign_mp4(io.BytesIO(mp4.read_bytes()), out, clip=clip, credentials=credentials)
    assert result.params_sha256 == params_sha256(PARAMS)
    assert result.manifest_bytes > 0
    verdict = read_manifest(out.getvalue(), credentials.trust_anchors_pem)
    assert verdict["state"] == "trusted"
    assert verdict["job"]["job_id"] == "job_01J9ZQ"


def test_signing_to_a_path_leaves_no_temporary_files(mp4, clip, credentials, tmp_path):
    sign_mp4(mp4, tmp_path / "out.mp4", clip=clip, credentials=credentials)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_remix_names_its_parent_consent_and_soft_binding(signed, mp4, credentials):
    parent_label = read_manifest(signed)["active_manifest_label"]
    remix = ClipManifest(
        job_id="job_remix",
        title="Red ball, remixed",
        params={"prompt": "now in the snow", "parent": "video_parent"},
        engine_version="0.4.2",
        parent=Parent(source=signed, title="Red ball", clip_id="video_parent"),
        consent=[ConsentReference("consent_7", "cameo_3", {"owner": "ava"})],
        soft_bindings=[SoftBinding("org.montage.watermark.v1", b"\x00\x01\xfe", {"frames": "all"})],
    )
    out = io.BytesIO()
    sign_mp4(mp4, out, clip=remix, credentials=credentials)
    result = read_manifest(out.getvalue(), credentials.trust_anchors_pem)

    assert result["state"] == "trusted"
    opened, edited = result["actions"]
    assert opened["action"] == "c2pa.opened"
    assert len(opened["parameters"]["ingredients"]) == 1
    assert edited["action"] == "c2pa.edited"
    assert edited["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert edited["description"] == "remix"
    [ingredient] = result["active_manifest"]["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["active_manifest"] == parent_label
    # The parent's own manifest travels inside the remix's store.
    assert set(result["manifests"]) == {parent_label, result["active_manifest_label"]}
    assert result["job"]["parent_clip_id"] == "video_parent"
    assert result["consent"] == {
        "entries": [{"ledger_entry_id": "consent_7", "cameo_id": "cameo_3", "owner": "ava"}]
    }
    binding = next(
        a["data"]
        for a in result["active_manifest"]["assertions"]
        if a["label"] == SOFT_BINDING_ASSERTION
    )
    assert binding == {
        "alg": "org.montage.watermark.v1",
        "blocks": [{"scope": {"frames": "all"}, "value": "AAH+"}],
    }


def test_extra_assertions_are_carried_as_given():
    clip = ClipManifest(
        job_id="j",
        title="t",
        params={},
        extra_assertions=[{"label": "org.montage.fingerprint", "data": {"pdq": ["ab"]}}],
    )
    definition = manifest_definition(clip)
    assert definition["assertions"][-1] == {
        "label": "org.montage.fingerprint",
        "data": {"pdq": ["ab"]},
    }
    json.dumps(definition)
