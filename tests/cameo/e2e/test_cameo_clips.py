"""Cameos end to end with a real Celery worker and the real engine: a clip shows the cameo's
likeness, the owner sees and removes it, and consent withdrawn while a job runs means that job
never yields a clip."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import user_block
from cameo.models import Appearance, LedgerEntry
from generation.models import Clip, GenerationJob, JobAttempt, JobStage, JobStatus
from generation.pipeline import signing_credentials
from generation.provenance.c2pa_sign import read_manifest
from tests.cameo.e2e.helpers import assert_shows_likeness
from tests.cameo.helpers import actions, befriend, generate, job_from, person_cameo
from tests.factories import UserFactory
from tests.fixtures import client_for, wait_for
from tests.generation.e2e.helpers import wait_finished
from tests.support.errors import assert_error

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _clip_files(job) -> list[str]:
    root = Path(settings.MEDIA_ROOT) / "clips" / job.id.hex
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def test_a_clip_with_a_cameo_shows_its_likeness_and_its_owner_can_take_it_down(cameo_worker):
    alice, bob = UserFactory(handle="alice"), UserFactory(handle="bob")
    cameo = person_cameo(alice)
    befriend(alice, bob)
    bob_api, alice_api = client_for(bob), client_for(alice)
    response = generate(bob_api, "@alice stands in a studio", seconds=1, size="512x512")
    assert response.status_code == 201, response.content
    job = wait_finished(job_from(response))
    assert job.status == JobStatus.COMPLETED, (job.error_code, job.error_message)
    clip = Clip.objects.get(job=job)
    assert_shows_likeness(clip, "alice", cameo.reference_image)
    use = LedgerEntry.objects.get(cameo=cameo, action="used")
    # The clip's signed manifest references the ledger entry that permitted the appearance.
    with default_storage.open(clip.video.name, "rb") as handle:
        manifest = read_manifest(handle.read(), signing_credentials().trust_anchors_pem)
    assert manifest["state"] == "trusted"
    assert manifest["consent"]["entries"] == [
        {
            "ledger_entry_id": use.entry_hash,
            "cameo_id": cameo.public_id,
            "owner": "alice",
            "action": "use",
            "at": use.at.isoformat(),
        }
    ]

    # The owner sees bob's unpublished draft among her appearances.
    listed = alice_api.get(f"/api/v1/cameos/{cameo.public_id}/appearances").json()["data"]
    assert [(a["video_id"], a["user"], a["job_status"]) for a in listed] == [
        (job.public_id, "bob", "completed")
    ]
    urls = listed[0]["clip"].pop("urls")
    assert listed[0]["clip"] == {"published": False, "audience": "only_me", "removed": False}
    # She can watch the draft through its signed link (no one else can reach its media).
    anyone = APIClient()
    thumbnail = anyone.get(urls["thumbnail"])
    assert thumbnail.status_code == 200 and thumbnail["Content-Type"].startswith("image/")
    assert client_for(UserFactory()).get(f"/v1/videos/{job.public_id}/content").status_code == 404
    assert listed[0]["ledger_entry"] == use.entry_hash

    # ...and takes it down: gone from every URL, recorded in the ledger.
    removed = alice_api.delete(f"/api/v1/cameos/{cameo.public_id}/appearances/{listed[0]['id']}")
    assert removed.status_code == 200 and removed.json()["removed_at"] is not None
    clip.refresh_from_db()
    assert clip.removed_at is not None
    assert bob_api.get(f"/v1/videos/{job.public_id}/content").status_code == 404
    assert anyone.get(urls["video"]).status_code == 404
    assert actions(cameo)[-2:] == ["used", "appearance_removed"]
    call_command("verify_consent_ledger")


def test_a_revocation_committed_while_the_job_renders_means_no_clip(cameo_worker):
    alice, bob = UserFactory(handle="alice"), UserFactory(handle="bob")
    cameo = person_cameo(alice, audience="approved")
    alice_api = client_for(alice)
    alice_api.post(f"/api/v1/cameos/{cameo.public_id}/grants", {"handle": "bob"}, format="json")
    response = generate(client_for(bob), "@alice dances on a stage", seconds=4, size="720x1280")
    assert response.status_code == 201, response.content
    job = job_from(response)

    def rendering():
        job.refresh_from_db()
        return job.stage == JobStage.RENDERING and job.progress > 0

    wait_for(rendering, 120, "the worker to be rendering the job", interval=0.02)
    [grant] = alice_api.get(f"/api/v1/cameos/{cameo.public_id}/grants").json()["data"]
    revoked = alice_api.delete(f"/api/v1/cameos/{cameo.public_id}/grants/{grant['id']}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    job = wait_finished(job)
    assert job.status == JobStatus.BLOCKED
    assert job.error_code == "cameo_consent_withdrawn"
    assert not Clip.objects.filter(job=job).exists()
    assert _clip_files(job) == []
    # The worker was interrupted mid-render, not merely refused at the end.
    outcomes = list(job.attempts.values_list("stage", "outcome"))
    assert outcomes == [(JobStage.RENDERING, JobAttempt.Outcome.CANCELLED)]
    assert actions(cameo)[-1] == "access_revoked"


def test_consent_lost_without_stopping_the_job_is_caught_at_completion(cameo_worker):
    """A block is made in accounts, which knows nothing of jobs: the job renders to the end,
    and the consent gate's second check refuses it there."""
    alice, bob = UserFactory(handle="alice"), UserFactory(handle="bob")
    cameo = person_cameo(alice)
    befriend(alice, bob)
    response = generate(client_for(bob), "@alice waves", seconds=1, size="512x512")
    job = job_from(response)
    assert client_for(alice).post("/api/v1/users/bob/block").status_code == 204
    job = wait_finished(job)
    assert job.status == JobStatus.BLOCKED
    assert job.error_code == "cameo_consent_withdrawn"
    assert not Clip.objects.filter(job=job).exists()
    assert _clip_files(job) == []
    assert Appearance.objects.get(job=job).cameo_id == cameo.pk


def test_taking_a_cameo_down_reaches_remixes_and_remixes_cannot_launder_it(cameo_worker):
    alice, bob = UserFactory(handle="alice"), UserFactory(handle="bob")
    carol, dave = UserFactory(handle="carol"), UserFactory(handle="dave")
    cameo = person_cameo(alice, audience="everyone")
    user_block(blocker=alice, blocked=dave)
    job = wait_finished(job_from(generate(client_for(bob), "@alice stands in a studio")))
    assert job.status == JobStatus.COMPLETED, (job.error_code, job.error_message)
    # bob publishes it (the feed's publication, as a row change).
    Clip.objects.filter(job=job).update(audience="public", published_at=timezone.now())

    # dave may see bob's public clip but not use alice's likeness: his remix is refused.
    laundering = client_for(dave).post(
        f"/v1/videos/{job.public_id}/remix", {"prompt": "a cat dances"}, format="json"
    )
    assert_error(laundering, 403, code="cameo_unavailable", param="video")

    response = client_for(carol).post(
        f"/v1/videos/{job.public_id}/remix", {"prompt": "a cat dances in a studio"}, format="json"
    )
    assert response.status_code == 200, response.content
    remix = wait_finished(
        GenerationJob.objects.get(pk=response.json()["id"].removeprefix("video_"))
    )
    assert remix.status == JobStatus.COMPLETED, (remix.error_code, remix.error_message)
    assert [c["cameo_id"] for c in remix.annotations["cameos"]] == [cameo.public_id]

    revoked = client_for(alice).post(
        f"/api/v1/cameos/{cameo.public_id}/revoke", {"policy": "take_down"}, format="json"
    )
    assert revoked.status_code == 200
    for clip in Clip.objects.filter(job__in=[job, remix]):
        assert clip.removed_at is not None, clip.job.public_id
    assert client_for(carol).get(f"/v1/videos/{remix.public_id}/content").status_code == 404
    assert actions(cameo)[-1] == "revoked"
    call_command("verify_consent_ledger")
