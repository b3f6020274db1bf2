"""Verification end to end: clips made by a real worker, their remix, and copies of them
(stripped and re-encoded, tampered, altered) verified through the API and the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from generation.media.encode import EncodeSettings, encode_mp4
from generation.models import Clip, JobStatus
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.generation.e2e.helpers import job_of, wait_finished
from tests.generation.media.helpers import moving_clip, mp4_boxes, tone
from tests.generation.provenance.gates import LEDGER_ENTRY
from tests.support.errors import assert_error

# The clips are made once, committed, by a real worker (module fixture); each test then reads
# them inside its own rolled-back transaction.
pytestmark = [pytest.mark.slow, pytest.mark.django_db]
VERIFY = "/api/v1/provenance/verify"


def _frames(data: bytes) -> tuple[np.ndarray, float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, float(stream.average_rate)


def _reencode(frames: np.ndarray, fps: float, path: Path, *, crf: int) -> Path:
    encode_mp4(frames, None, path, fps=round(fps), settings=EncodeSettings(crf=crf))
    return path


def _half(frames: np.ndarray) -> np.ndarray:
    """Half size by 2x2 averaging, like a downscaling re-upload."""
    t, h, w, c = frames.shape
    return frames.reshape(t, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4)).astype(np.uint8)


@pytest.fixture(scope="module")
def clips(generation_worker, django_db_blocker, tmp_path_factory, settings_module):
    """A clip, its remix (both with recorded consent), and files derived from them."""
    work = tmp_path_factory.mktemp("verify")
    with django_db_blocker.unblock():
        owner = UserFactory()
        api = client_for(owner)
        body = api.post(
            "/api/v1/generations",
            {"prompt": "a red ball bounces on a sunny beach", "seconds": 2, "size": "512x512"},
            format="json",
        ).json()
        original = wait_finished(job_of(body), 180)
        assert original.status == JobStatus.COMPLETED, original.error_message
        remix_body = api.post(
            f"/v1/videos/{original.public_id}/remix",
            {"prompt": "the red ball bounces in deep snow at night"},
            format="json",
        ).json()
        remix = wait_finished(original.__class__.objects.get(pk=remix_body["id"][6:]), 180)
        assert remix.status == JobStatus.COMPLETED, remix.error_message
        files = {}
        for name, job in (("original", original), ("remix", remix)):
            with job.clip.video.open("rb") as handle:
                files[name] = work / f"{name}.mp4"
                files[name].write_bytes(handle.read())
        frames, fps = _frames(files["remix"].read_bytes())
        files["stripped"] = _reencode(_half(frames), fps, work / "stripped.mp4", crf=30)
        altered = frames.copy()
        second = slice(round(fps), round(2 * fps))
        altered[second, 96:416, 96:416] = 255  # a white card over the middle of second 2
        files["altered"] = _reencode(altered, fps, work / "altered.mp4", crf=23)
        data = bytearray(files["remix"].read_bytes())
        [(_, offset, size)] = [box for box in mp4_boxes(bytes(data)) if box[0] == "mdat"]
        data[offset + size // 2] ^= 0x40  # one bit of the coded picture, inside the signed file
        files["tampered"] = work / "tampered.mp4"
        files["tampered"].write_bytes(bytes(data))
        files["unrelated"] = work / "unrelated.mp4"
        encode_mp4(moving_clip(48, 320, 576), tone(2.0), files["unrelated"])
    yield {"owner": owner, "original": original, "remix": remix, "files": files}
    with django_db_blocker.unblock():
        # What the module committed (jobs, clips, lineage, screening records) goes, as a
        # transactional test's data would.
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def settings_module():
    """Consent references recorded at creation, as the cameo gate would record them."""
    from django.conf import settings

    before = list(settings.GENERATION_GATES)
    settings.GENERATION_GATES = [*before, "tests.generation.provenance.gates.record_consent"]
    yield
    settings.GENERATION_GATES = before


def _verify(path: Path, client=None) -> dict:
    client = client or APIClient()
    with path.open("rb") as handle:
        response = client.post(VERIFY, {"file": handle}, format="multipart")
    assert response.status_code == 200, response.content
    return response.json()


def test_the_original_is_authentic_and_names_its_job_watermark_and_consent(clips):
    original = clips["original"]
    report = _verify(clips["files"]["original"])
    assert report["verdict"] == "authentic", report["reasons"]
    assert report["manifest"]["state"] == "trusted"
    assert report["manifest"]["job_id"] == original.public_id
    assert report["manifest"]["actions"] == ["c2pa.created"]
    assert report["manifest"]["digital_source_type"].endswith("/trainedAlgorithmicMedia")
    assert report["manifest"]["params_hash"] == original.params_hash
    payload = bytes(Clip.objects.get(job=original).watermark).hex()
    assert report["watermark"]["payload"] == payload
    assert report["manifest"]["soft_binding"]["payload"] == payload
    assert report["clip"]["id"] == original.public_id
    assert report["fingerprint"]["matches"][0]["clip"]["id"] == original.public_id
    assert report["lineage"] == []
    assert [e["ledger_entry_id"] for e in report["manifest"]["consent"]] == [LEDGER_ENTRY]
    assert [e["ledger_entry_id"] for e in report["consent"]] == [LEDGER_ENTRY]
    # Anyone may verify; the creator's identity is only for those who may see the clip.
    assert "creator" not in report["clip"]


def test_the_remix_carries_its_parent_in_the_manifest_and_the_database(clips):
    original, remix = clips["original"], clips["remix"]
    report = _verify(clips["files"]["remix"], client_for(clips["owner"]))
    assert report["verdict"] == "authentic", report["reasons"]
    assert report["manifest"]["actions"] == ["c2pa.opened", "c2pa.edited"]
    assert report["manifest"]["parent_clip_id"] == original.public_id
    # The C2PA ingredient chain and the lineage in the database agree.
    assert report["manifest"]["ingredient_chain"] == [remix.public_id, original.public_id]
    assert [a["id"] for a in report["lineage"]] == [original.public_id]
    assert report["clip"]["creator"] == clips["owner"].handle


def test_the_c2pa_ingredient_chain_agrees_with_the_lineage_graph(clips):
    """The remix app's graph (its own tables, written when the clip was stored) and the chain
    of parentOf ingredients in the signed manifest name the same ancestors, in order."""
    from remix.selectors import ancestors_page

    original, remix = clips["original"], clips["remix"]
    report = _verify(clips["files"]["remix"])
    items, _ = ancestors_page(clip=remix.clip, user=clips["owner"], cursor=None, limit=50)
    graph = [remix.public_id, *(item.clip.job.public_id for item in items)]
    assert (
        report["manifest"]["ingredient_chain"]
        == graph
        == [
            remix.public_id,
            original.public_id,
        ]
    )


def test_the_remix_stripped_and_re_encoded_still_leads_back(clips):
    original, remix = clips["original"], clips["remix"]
    report = _verify(clips["files"]["stripped"])
    assert report["manifest"] == {"present": False, "state": "absent"}
    assert report["verdict"] == "identified", report["reasons"]
    assert report["watermark"]["clip"]["id"] == remix.public_id
    assert report["clip"]["id"] == remix.public_id
    assert report["pixels"]["altered"] is False
    assert [a["id"] for a in report["lineage"]] == [original.public_id]
    assert [e["ledger_entry_id"] for e in report["consent"]] == [LEDGER_ENTRY]


def test_a_signed_file_changed_after_signing_is_tampered(clips):
    report = _verify(clips["files"]["tampered"])
    assert report["verdict"] == "tampered"
    assert report["manifest"]["state"] == "invalid"


def test_pixels_altered_after_signing_are_flagged_even_without_a_manifest(clips):
    report = _verify(clips["files"]["altered"])
    assert report["verdict"] == "tampered", report["reasons"]
    assert report["clip"]["id"] == clips["remix"].public_id
    assert report["pixels"]["altered"] is True and report["pixels"]["altered_seconds"] >= 1


def test_a_video_not_made_here_is_unknown(clips):
    report = _verify(clips["files"]["unrelated"])
    assert report["verdict"] == "unknown"
    assert report["clip"] is None and report["watermark"]["found"] is False


def test_the_cli_prints_the_same_findings(clips, capsys):
    call_command("verify_media", str(clips["files"]["stripped"]))
    out = capsys.readouterr().out
    assert "IDENTIFIED" in out and clips["remix"].public_id in out
    assert f"parent:    {clips['original'].public_id}" in out
    assert LEDGER_ENTRY in out
    call_command("verify_media", str(clips["files"]["original"]), "--json")
    assert json.loads(capsys.readouterr().out)["verdict"] == "authentic"
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_media", str(clips["files"]["tampered"]))
    assert exit_.value.code == 1


def test_a_raw_body_upload_works_like_a_form(clips):
    response = APIClient().generic(
        "POST",
        VERIFY,
        clips["files"]["original"].read_bytes(),
        content_type="video/mp4",
    )
    assert response.status_code == 200 and response.json()["verdict"] == "authentic"


def test_malformed_uploads_get_clear_errors(clips, settings):
    client = APIClient()
    assert_error(
        client.post(VERIFY, {}, format="multipart"), 400, code="missing_file", param="file"
    )
    empty = io.BytesIO(b"")
    empty.name = "empty.mp4"
    assert_error(
        client.post(VERIFY, {"file": empty}, format="multipart"),
        400,
        code="empty_file",
        param="file",
    )
    text = io.BytesIO(b"<html>not a video</html>")
    text.name = "page.mp4"
    assert_error(
        client.post(VERIFY, {"file": text}, format="multipart"),
        415,
        code="unsupported_media_type",
        param="file",
    )
    junk = io.BytesIO(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64)
    junk.name = "junk.mp4"
    assert_error(
        client.post(VERIFY, {"file": junk}, format="multipart"),
        422,
        code="unreadable_media",
        param="file",
    )
    settings.PROVENANCE_VERIFY_MAX_BYTES = 1024
    with clips["files"]["original"].open("rb") as handle:
        assert_error(
            client.post(VERIFY, {"file": handle}, format="multipart"),
            413,
            code="file_too_large",
            param="file",
        )


def test_verification_is_rate_limited_per_client(clips, settings):
    settings.MONTAGE_THROTTLE_RATES = {**settings.MONTAGE_THROTTLE_RATES, "verify": "2/min"}
    client = APIClient()
    for _ in range(2):
        _verify(clips["files"]["unrelated"], client)
    with clips["files"]["unrelated"].open("rb") as handle:
        response = client.post(VERIFY, {"file": handle}, format="multipart")
    assert_error(response, 429, code="rate_limit_exceeded")
