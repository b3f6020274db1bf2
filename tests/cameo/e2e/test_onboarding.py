"""A person becomes a cameo through the API: a challenge, a recording made from a real face
photo with synthesized speech, verification on a real worker — then others use it."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from cameo.models import Cameo, CameoStatus, RecordingCheck
from generation.models import Clip, JobStatus
from tests.cameo.e2e.helpers import assert_shows_likeness
from tests.cameo.helpers import actions, befriend, generate, job_from
from tests.cameo.verification.recording import make_recording
from tests.factories import UserFactory
from tests.fixtures import client_for, wait_for
from tests.generation.e2e.helpers import wait_finished
from tests.support.errors import assert_error

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _submit(api, challenge_id: str, path) -> dict:
    with open(path, "rb") as handle:
        response = api.post(
            f"/api/v1/cameos/challenges/{challenge_id}/recording",
            {"recording": handle},
            format="multipart",
        )
    return response


def _settled(cameo_id: str) -> Cameo:
    cameo = Cameo.objects.get(pk=cameo_id.removeprefix("cameo_"))

    def done():
        cameo.refresh_from_db()
        return cameo.status != CameoStatus.PENDING

    wait_for(done, 240, "the recording to be verified", interval=0.5)
    return cameo


def test_a_recorded_person_becomes_a_cameo_others_can_put_in_a_clip(cameo_worker, tmp_path):
    alice, bob = UserFactory(handle="alice"), UserFactory(handle="bob")
    api = client_for(alice)
    challenge = api.post("/api/v1/cameos/challenges").json()
    assert len(challenge["digits"]) == 6 and len(challenge["turns"]) == 3
    recording = tmp_path / "alice.mp4"
    make_recording(recording, digits=challenge["digits"], turns=challenge["turns"])

    response = _submit(api, challenge["id"], recording)
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["handle"], body["kind"], body["status"]) == ("alice", "person", "pending")
    # Single use: the same challenge answers no second recording.
    assert_error(
        _submit(api, challenge["id"], recording), 409, code="challenge_used", param="challenge_id"
    )

    cameo = _settled(body["id"])
    check = RecordingCheck.objects.get(cameo=cameo)
    assert cameo.status == CameoStatus.VERIFIED, check.reasons
    assert check.decision == "pass" and check.fingerprint
    assert cameo.reference_frames and cameo.reference_image == cameo.reference_frames[0]
    assert cameo.voice_sample and default_storage.exists(cameo.voice_sample)
    # The recording itself is not kept once decided.
    assert cameo.source_media == ""
    assert actions(cameo) == ["created", "verified"]
    assert cameo.audience == "mutuals"

    befriend(alice, bob)
    job = wait_finished(job_from(generate(client_for(bob), "@alice stands in a studio")))
    assert job.status == JobStatus.COMPLETED, (job.error_code, job.error_message)
    assert_shows_likeness(Clip.objects.get(job=job), "alice", cameo.reference_image)
    call_command("verify_consent_ledger")

    # Someone else replaying alice's recording against their own challenge is refused.
    mallory = client_for(UserFactory(handle="mallory"))
    other = mallory.post("/api/v1/cameos/challenges").json()
    replayed = _submit(mallory, other["id"], recording)
    assert replayed.status_code == 202
    stolen = _settled(replayed.json()["id"])
    assert stolen.status == CameoStatus.REJECTED
    reasons = {r["check"]: r for r in RecordingCheck.objects.get(cameo=stolen).reasons}
    assert reasons["replay"]["ok"] is False
    assert stolen.reference_frames == [] and stolen.source_media == ""
