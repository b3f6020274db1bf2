"""The cameo API: onboarding, characters, access requests and grants, preferences,
appearances, revocation and deletion — happy paths, denied and malformed requests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from accounts.models import Notification
from accounts.services import user_block
from cameo import services
from cameo.models import Appearance, Cameo, CameoGrant, CameoStatus, Challenge, LedgerEntry
from generation.media.encode import EncodeSettings, encode_mp4
from generation.models import Clip, GenerationJob, JobStage, JobStatus
from tests.cameo.helpers import (
    actions,
    befriend,
    character,
    generate,
    job_from,
    person_cameo,
    png_upload,
)
from tests.factories import UserFactory, clip_row_fields
from tests.fixtures import client_for
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db


# --- Onboarding --------------------------------------------------------------------------------


def test_a_challenge_is_single_use_short_lived_and_private(alice, bob):
    api = client_for(alice)
    response = api.post("/api/v1/cameos/challenges")
    assert response.status_code == 201
    body = response.json()
    assert body["object"] == "cameo.challenge" and body["id"].startswith("chal_")
    assert len(body["digits"]) == 6 and all(d.isdigit() for d in body["digits"])
    assert set(body["turns"]) <= {"left", "right"}
    challenge = Challenge.objects.get(pk=body["id"].removeprefix("chal_"))
    assert dt.timedelta(seconds=295) < challenge.expires_at - challenge.created_at
    assert challenge.expires_at - challenge.created_at <= dt.timedelta(seconds=300)

    recording = SimpleUploadedFile("r.mp4", b"not really a video", content_type="video/mp4")
    # Someone else's challenge answers exactly like a missing one.
    other = client_for(bob).post(
        f"/api/v1/cameos/challenges/{body['id']}/recording",
        {"recording": recording},
        format="multipart",
    )
    assert_error(other, 404, code="challenge_not_found", param="challenge_id")
    assert_error(
        api.post("/api/v1/cameos/challenges/chal_nonsense/recording", {}, format="multipart"),
        404,
        code="challenge_not_found",
        param="challenge_id",
    )
    assert_error(
        api.post(f"/api/v1/cameos/challenges/{body['id']}/recording", {}, format="multipart"),
        400,
        code="required",
        param="recording",
    )
    Challenge.objects.filter(pk=challenge.pk).update(expires_at=timezone.now())
    recording.seek(0)
    expired = api.post(
        f"/api/v1/cameos/challenges/{body['id']}/recording",
        {"recording": recording},
        format="multipart",
    )
    assert_error(expired, 409, code="challenge_expired", param="challenge_id")
    assert not Cameo.objects.exists()


def test_a_recording_over_the_limit_is_refused_whole(alice, settings):
    settings.CAMEO_MAX_RECORDING_BYTES = 10
    api = client_for(alice)
    challenge = api.post("/api/v1/cameos/challenges").json()
    recording = SimpleUploadedFile("r.mp4", b"x" * 11, content_type="video/mp4")
    response = api.post(
        f"/api/v1/cameos/challenges/{challenge['id']}/recording",
        {"recording": recording},
        format="multipart",
    )
    assert_error(response, 413, code="request_too_large", param="recording")
    assert not Cameo.objects.exists()
    assert Challenge.objects.get().used_at is None


def test_one_live_person_cameo_per_account(alice):
    person_cameo(alice)
    assert_error(client_for(alice).post("/api/v1/cameos/challenges"), 409, code="cameo_exists")


def test_a_recording_is_stored_privately_and_queued_for_verification(
    alice, django_capture_on_commit_callbacks
):
    api = client_for(alice)
    challenge = api.post("/api/v1/cameos/challenges").json()
    recording = SimpleUploadedFile("selfie.mp4", b"\x00" * 64, content_type="video/mp4")
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            f"/api/v1/cameos/challenges/{challenge['id']}/recording",
            {"recording": recording},
            format="multipart",
        )
    assert response.status_code == 202
    cameo = Cameo.objects.get()
    assert (cameo.status, cameo.handle, cameo.audience) == ("pending", "alice", "mutuals")
    assert cameo.source_media == f"private/cameos/{cameo.id.hex}/recording.mp4"
    assert default_storage.exists(cameo.source_media)
    assert len(callbacks) == 1  # the verification task, sent once the upload is committed
    # Private media has no URL, not even for its owner.
    for path in (f"/media/{cameo.source_media}", f"/{cameo.source_media}"):
        assert api.get(path).status_code == 404
    assert actions(cameo) == ["created"]
    # Nothing about it is public while it is being checked.
    assert_error(
        client_for(UserFactory()).get(f"/api/v1/cameos/{cameo.public_id}"),
        404,
        code="cameo_not_found",
        param="cameo_id",
    )


def test_a_review_decision_goes_to_staff_and_their_approval_verifies(alice):
    from cameo.verification import VerificationResult
    from moderation.models import Case
    from moderation.services import case_decide

    cameo = Cameo.objects.create(
        owner=alice, kind="person", handle="alice", status="pending", audience="mutuals"
    )
    challenge = Challenge.objects.create(
        user=alice, digits=["1"], turns=["left"], expires_at=timezone.now(), cameo=cameo
    )
    check = cameo.checks.create(challenge=challenge)
    face = np.full((64, 64, 3), 128, dtype=np.uint8)
    undecided = VerificationResult(
        decision="review",
        reasons=[{"check": "digits", "ok": False, "verdict": "review", "detail": "unclear"}],
        fingerprint=b"\x01fp",
        reference_frames=[face],
    )
    services.verification_apply(check=check, result=undecided)
    cameo.refresh_from_db()
    assert cameo.status == CameoStatus.NEEDS_REVIEW and cameo.reference_image
    case = Case.objects.get(queue="cameo_verification", subject_id=cameo.public_id)
    staff = UserFactory(is_staff=True, is_superuser=True)
    case_decide(case=case, actor=staff, decision="approve", reason_code="verification_passed")
    cameo.refresh_from_db()
    assert cameo.status == CameoStatus.VERIFIED
    assert actions(cameo) == ["review_requested", "verified"]
    assert LedgerEntry.objects.filter(cameo=cameo).last().actor == f"staff:{staff.pk}"


# --- Characters --------------------------------------------------------------------------------


def _mp4_bytes(tmp_path) -> bytes:
    frames = np.zeros((12, 64, 64, 3), dtype=np.uint8)
    frames[..., 2] = 200
    path = tmp_path / "pet.mp4"
    encode_mp4(frames, None, path, fps=12, sample_rate=48000, settings=EncodeSettings())
    return path.read_bytes()


def test_openai_character_create_and_retrieve(alice, tmp_path):
    api = client_for(alice)
    video = SimpleUploadedFile("pet.mp4", _mp4_bytes(tmp_path), content_type="video/mp4")
    response = api.post(
        "/v1/videos/characters",
        {"name": "Biscuit the dog", "video": video, "rights_attested": "true"},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"].startswith("char_") and body["name"] == "Biscuit the dog"
    assert body["handle"] == "biscuit_the_dog" and isinstance(body["created_at"], int)
    cameo = Cameo.objects.get()
    assert (cameo.kind, cameo.status, cameo.rights_attested_at is not None) == (
        "character",
        "verified",
        True,
    )
    with default_storage.open(cameo.reference_image) as handle:
        reference = np.asarray(Image.open(handle).convert("RGB"))
    assert reference[..., 2].mean() > 150  # the clip's frame became the reference
    assert actions(cameo) == ["created"]
    assert LedgerEntry.objects.get(cameo=cameo).data["rights_attested"] is True
    again = api.get(f"/v1/videos/characters/{body['id']}")
    assert again.status_code == 200 and again.json() == body


@pytest.mark.parametrize(
    ("fields", "status", "code", "param"),
    [
        ({"name": "Rex"}, 400, "rights_not_attested", "rights_attested"),
        ({"name": "", "rights_attested": "true"}, 400, "blank", "name"),
        (
            {"name": "Rex", "rights_attested": "true", "handle": "Bad.Handle"},
            400,
            "invalid_handle",
            "handle",
        ),
        (
            {"name": "Rex", "rights_attested": "true", "handle": "alice"},
            409,
            "handle_taken",
            "handle",
        ),
        ({"name": "!!", "rights_attested": "true"}, 400, "invalid_handle", "handle"),
    ],
)
def test_character_create_refusals(alice, fields, status, code, param):
    response = client_for(alice).post(
        "/v1/videos/characters", {**fields, "video": png_upload()}, format="multipart"
    )
    assert_error(response, status, code=code, param=param)
    assert not Cameo.objects.exists() and not LedgerEntry.objects.exists()


def test_character_file_must_be_an_image_or_video(alice):
    junk = SimpleUploadedFile("x.bin", b"\x00\x01junk" * 20)
    response = client_for(alice).post(
        "/api/v1/cameos/characters",
        {"name": "Rex", "video": junk, "rights_attested": "true"},
        format="multipart",
    )
    assert_error(response, 400, code="invalid_media", param="video")
    assert not Cameo.objects.exists()


def test_a_characters_handle_is_unique_among_live_cameos(alice, bob):
    character(alice, handle="rex_dog")
    response = client_for(bob).post(
        "/api/v1/cameos/characters",
        {"name": "Rex", "handle": "rex_dog", "video": png_upload(), "rights_attested": "1"},
        format="multipart",
    )
    assert_error(response, 409, code="handle_taken", param="handle")


def test_a_missing_character_is_a_404_in_the_error_shape(alice):
    assert_error(
        client_for(alice).get("/v1/videos/characters/char_0000"),
        404,
        code="character_not_found",
        param="character_id",
    )
    assert (
        client_for(alice).post("/v1/videos/characters", {}, format="multipart").status_code == 400
    )


# --- Requests and grants -----------------------------------------------------------------------


def test_request_accept_and_use(alice, bob):
    cameo = person_cameo(alice, audience="approved")
    bob_api, alice_api = client_for(bob), client_for(alice)
    assert generate(bob_api, "@alice sings").status_code == 403
    sent = bob_api.post("/api/v1/cameos/requests", {"handle": "@alice"}, format="json")
    assert sent.status_code == 202 and sent.json() == {
        "object": "cameo.access_request",
        "status": "sent",
    }
    assert Notification.objects.filter(user=alice, kind="cameo_access_requested").count() == 1
    [grant] = alice_api.get(f"/api/v1/cameos/{cameo.public_id}/grants").json()["data"]
    assert (grant["grantee"], grant["status"], grant["requested"]) == ("bob", "pending", True)
    assert generate(bob_api, "@alice sings").status_code == 403
    url = f"/api/v1/cameos/{cameo.public_id}/grants/{grant['id']}"
    accepted = alice_api.post(f"{url}/accept")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert_error(alice_api.post(f"{url}/accept"), 409, code="grant_not_pending")
    assert_error(alice_api.post(f"{url}/decline"), 409, code="grant_not_pending")
    assert generate(bob_api, "@alice sings").status_code == 201
    assert actions(cameo)[-3:] == ["access_requested", "access_approved", "used"]


def test_a_request_reveals_nothing(alice, bob):
    only_me = person_cameo(alice, audience="only_me")
    carol = UserFactory(handle="carol")
    person_cameo(carol, audience="approved")
    user_block(blocker=carol, blocked=bob)
    api = client_for(bob)
    answers = [
        api.post("/api/v1/cameos/requests", {"handle": handle}, format="json")
        for handle in ("alice", "carol", "no_such_cameo")
    ]
    assert {(r.status_code, r.content) for r in answers} == {(202, answers[0].content)}
    assert not CameoGrant.objects.exists()
    assert actions(only_me) == ["verified", "audience_changed"]
    assert_error(
        api.post("/api/v1/cameos/requests", {}, format="json"), 400, code="required", param="handle"
    )


def test_decline_and_owner_grants(alice, bob):
    cameo = person_cameo(alice, audience="approved")
    client_for(bob).post("/api/v1/cameos/requests", {"handle": "alice"}, format="json")
    alice_api = client_for(alice)
    grant = CameoGrant.objects.get()
    declined = alice_api.post(f"/api/v1/cameos/{cameo.public_id}/grants/{grant.pk}/decline")
    assert declined.json()["status"] == "declined"
    given = alice_api.post(
        f"/api/v1/cameos/{cameo.public_id}/grants", {"handle": "bob"}, format="json"
    )
    assert given.status_code == 201 and given.json()["status"] == "accepted"
    assert generate(client_for(bob), "@alice sings").status_code == 201
    base = f"/api/v1/cameos/{cameo.public_id}/grants"
    assert_error(
        alice_api.post(base, {"handle": "alice"}, format="json"), 400, code="cannot_grant_self"
    )
    assert_error(
        alice_api.post(base, {"handle": "nobody_here"}, format="json"),
        404,
        code="user_not_found",
    )
    assert_error(alice_api.post(f"{base}/not-a-uuid/accept"), 404, code="grant_not_found")
    assert_error(
        alice_api.delete(f"{base}/{grant.pk}?policy=burn"),
        400,
        code="invalid_choice",
        param="policy",
    )


# --- Preferences -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"audience": "friends"}, "invalid_choice", "audience"),
        ({"restrictions": "politics"}, "not_a_list", "restrictions"),
        ({"restrictions": ["x" * 61]}, "max_length", "restrictions[0]"),
        ({"instructions": "x" * 501}, "max_length", "instructions"),
        ({"revocation_policy": "shred"}, "invalid_choice", "revocation_policy"),
    ],
)
def test_bad_preferences_are_refused_and_change_nothing(alice, body, code, param):
    cameo = person_cameo(alice)
    before = actions(cameo)
    response = client_for(alice).patch(f"/api/v1/cameos/{cameo.public_id}", body, format="json")
    assert_error(response, 400, code=code, param=param)
    cameo.refresh_from_db()
    assert actions(cameo) == before and cameo.restrictions == [] and cameo.instructions == ""


def test_preferences_reach_the_engine_and_the_ledger(alice, bob):
    cameo = person_cameo(alice, audience="everyone")
    response = client_for(alice).patch(
        f"/api/v1/cameos/{cameo.public_id}",
        {"instructions": "Always wears a hat", "restrictions": ["Politics", " politics ", "war"]},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["instructions"], body["restrictions"]) == (
        "Always wears a hat",
        ["politics", "war"],
    )
    entry = LedgerEntry.objects.filter(cameo=cameo).last()
    assert entry.action == "preferences_changed"
    assert entry.data == {"instructions": "Always wears a hat", "restrictions": ["politics", "war"]}
    job = job_from(generate(client_for(bob), "@alice rides a horse"))
    ref = job.annotations["cameos"][0]
    assert (ref["instructions"], ref["restrictions"]) == ("Always wears a hat", ["politics", "war"])


# --- Appearances, revocation, deletion --------------------------------------------------------


def _finished_clip(job: GenerationJob, *, published: bool) -> Clip:
    GenerationJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED, stage=JobStage.DONE)
    job.refresh_from_db()
    return Clip.objects.create(
        **clip_row_fields(),
        job=job,
        user=job.user,
        duration_s=1,
        width=512,
        height=512,
        bytes=1,
        sha256="0" * 64,
        audience="public" if published else "only_me",
        published_at=timezone.now() if published else None,
    )


@pytest.fixture
def scene(alice, bob):
    """alice's cameo in bob's published clip, bob's draft, and a job still rendering."""
    cameo = person_cameo(alice, audience="approved")
    grant = services.grant_create(cameo=cameo, grantee=bob, actor=alice)
    api = client_for(bob)
    published = _finished_clip(job_from(generate(api, "@alice surfs")), published=True)
    draft = _finished_clip(job_from(generate(api, "@alice skates")), published=False)
    running = job_from(generate(api, "@alice dives"))
    return {
        "cameo": cameo,
        "grant": grant,
        "published": published,
        "draft": draft,
        "running": running,
    }


def test_the_owner_sees_every_appearance_drafts_included_in_a_fixed_number_of_queries(
    scene, alice, django_assert_num_queries
):
    api = client_for(alice)
    url = f"/api/v1/cameos/{scene['cameo'].public_id}/appearances"
    api.get(url)  # warm the authentication path
    with django_assert_num_queries(3):
        body = api.get(url).json()
    assert [
        (a["video_id"], a["job_status"], a["clip"] and a["clip"]["published"]) for a in body["data"]
    ] == [
        (scene["running"].public_id, "queued", None),
        (scene["draft"].job.public_id, "completed", False),
        (scene["published"].job.public_id, "completed", True),
    ]
    assert_error(api.get(f"{url}?limit=0"), 400, code="invalid_limit", param="limit")
    assert_error(
        api.delete(f"{url}/appearance_00000000000000000000000000000000"),
        404,
        code="appearance_not_found",
    )


def test_revoking_a_grant_keep_published_takes_down_drafts_and_stops_jobs(scene, alice):
    url = f"/api/v1/cameos/{scene['cameo'].public_id}/grants/{scene['grant'].pk}"
    response = client_for(alice).delete(f"{url}?policy=keep_published")
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    for item in ("published", "draft", "running"):
        scene[item].refresh_from_db()
    assert scene["published"].removed_at is None
    assert scene["draft"].removed_at is not None
    assert scene["running"].status == JobStatus.BLOCKED
    assert scene["running"].error_code == "cameo_consent_withdrawn"
    assert actions(scene["cameo"])[-1] == "access_revoked"


def test_revoking_the_cameo_take_down_removes_every_clip(scene, alice):
    response = client_for(alice).post(
        f"/api/v1/cameos/{scene['cameo'].public_id}/revoke", {"policy": "take_down"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    for item in ("published", "draft", "running"):
        scene[item].refresh_from_db()
    assert scene["published"].removed_at is not None and scene["draft"].removed_at is not None
    assert scene["running"].status == JobStatus.BLOCKED
    # Revoked means revoked for its owner too.
    assert_error(
        generate(client_for(alice), "@alice waves"), 403, code="cameo_unavailable", param="prompt"
    )
    assert_error(
        client_for(alice).patch(
            f"/api/v1/cameos/{scene['cameo'].public_id}", {"audience": "everyone"}, format="json"
        ),
        409,
        code="cameo_not_active",
    )


def test_deleting_purges_reference_media_and_keeps_the_ledger(
    scene, alice, django_capture_on_commit_callbacks
):
    cameo = scene["cameo"]
    frames = list(cameo.reference_frames)
    assert frames and all(default_storage.exists(name) for name in frames)
    api = client_for(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/v1/cameos/{cameo.public_id}?policy=keep_published")
    assert response.status_code == 200 and response.json()["status"] == "deleted"
    assert not any(default_storage.exists(name) for name in frames)
    cameo.refresh_from_db()
    assert (cameo.reference_image, cameo.reference_frames, cameo.voice_sample) == ("", [], "")
    assert actions(cameo)[-1] == "deleted"
    assert LedgerEntry.objects.filter(cameo=cameo).count() == len(actions(cameo))
    scene["published"].refresh_from_db()
    assert scene["published"].removed_at is None
    assert_error(
        api.get(f"/api/v1/cameos/{cameo.public_id}"), 404, code="cameo_not_found", param="cameo_id"
    )
    assert not CameoGrant.objects.filter(cameo=cameo, status="accepted").exists()
    # Its consent record outlives it, for its owner.
    ledger = api.get(f"/api/v1/cameos/{cameo.public_id}/ledger?limit=100").json()["data"]
    assert [e["action"] for e in ledger] == actions(cameo)
    # The handle is free for a new cameo.
    assert client_for(alice).post("/api/v1/cameos/challenges").status_code == 201


def test_the_owner_removes_a_draft_of_someone_else(scene, alice):
    cameo = scene["cameo"]
    appearance = Appearance.objects.get(job=scene["draft"].job)
    response = client_for(alice).delete(
        f"/api/v1/cameos/{cameo.public_id}/appearances/{appearance.public_id}"
    )
    assert response.status_code == 200
    scene["draft"].refresh_from_db()
    assert scene["draft"].removed_at is not None
    assert scene["draft"].removal_reason.startswith("cameo_owner_removed")
    entry = LedgerEntry.objects.filter(cameo=cameo).last()
    assert (entry.action, entry.data["video"]) == (
        "appearance_removed",
        scene["draft"].job.public_id,
    )
    # Removing again changes nothing.
    client_for(alice).delete(f"/api/v1/cameos/{cameo.public_id}/appearances/{appearance.public_id}")
    assert actions(cameo).count("appearance_removed") == 1


def test_my_cameos_lists_only_mine(alice, bob):
    mine = person_cameo(alice)
    pet = character(alice, handle="rex_dog")
    person_cameo(bob)
    body = client_for(alice).get("/api/v1/cameos").json()
    assert [c["id"] for c in body["data"]] == [pet.public_id, mine.public_id]
    befriend(alice, bob)
    assert client_for(bob).get(f"/api/v1/cameos/{mine.public_id}").json()["owner"] == "alice"


def _pending_check(owner, *, attempts: int = 0):
    cameo = Cameo.objects.create(
        owner=owner,
        kind="person",
        handle=owner.handle,
        status="pending",
        audience="mutuals",
        source_media=f"private/cameos/{owner.pk.hex}/gone.mp4",
    )
    challenge = Challenge.objects.create(
        user=owner, digits=["1"], turns=["left"], expires_at=timezone.now(), cameo=cameo
    )
    return cameo, cameo.checks.create(challenge=challenge, attempts=attempts)


def test_a_verifier_that_cannot_run_leaves_the_decision_to_a_person(alice):
    from moderation.models import Case

    cameo, check = _pending_check(alice)  # its recording is missing from storage
    services.verification_run(check=check)
    cameo.refresh_from_db()
    check.refresh_from_db()
    assert cameo.status == CameoStatus.NEEDS_REVIEW
    assert (check.decision, check.attempts) == ("review", 1)
    assert (
        check.reasons[0]["check"] == "verifier"
        and "FileNotFoundError" in check.reasons[0]["detail"]
    )
    assert Case.objects.filter(queue="cameo_verification", subject_id=cameo.public_id).exists()


def test_a_recording_whose_worker_keeps_dying_goes_to_review(alice):
    cameo, check = _pending_check(alice, attempts=3)
    services.verification_run(check=check)
    cameo.refresh_from_db()
    assert cameo.status == CameoStatus.NEEDS_REVIEW
    assert actions(cameo) == ["review_requested"]
