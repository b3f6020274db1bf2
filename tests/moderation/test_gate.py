"""The screening gate: prompts refused at creation with a clear 4xx and a durable record;
outputs screened before the clip exists (transcript, frames, hash banks); fail closed."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from generation.gates import COMPLETE, GateRefused
from generation.media.encode import EncodeSettings, encode_mp4
from generation.models import Clip, GenerationJob, JobAttempt, JobStage, JobStatus
from generation.provenance.fingerprint import pdq
from moderation.gates import screening_gate
from moderation.models import (
    BankedHash,
    Case,
    HashBank,
    ProtectedTerm,
    RightsHolder,
    ScreeningDecision,
)
from tests.factories import UserFactory
from tests.fixtures import client_for
from tests.moderation.helpers import textured_frames
from tests.support.errors import assert_error


@pytest.fixture(autouse=True)
def _no_earlier_decisions():
    """Refusals are recorded on their own connection (they outlive the refused request), so
    other tests' records are committed: each test here counts only its own."""
    ScreeningDecision.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_a_refused_prompt_gets_a_4xx_writes_no_job_and_keeps_the_record():
    api = client_for(UserFactory())
    response = api.post(
        "/api/v1/generations",
        {"prompt": "a man b e h e a d e d in the street, g0re everywhere", "size": "512x512"},
        format="json",
    )
    error = assert_error(response, 400, code="content_policy_violence", param="prompt")
    assert "graphic violence" in error["message"]
    assert not GenerationJob.objects.exists()
    (decision,) = ScreeningDecision.objects.all()
    assert (decision.phase, decision.verdict) == ("create", "block")
    assert decision.user_ref == f"user:{api.user.pk}"
    assert decision.reasons[0]["category"] == "violence"
    assert decision.reasons[0]["source"] == "rule"


@pytest.mark.django_db(transaction=True)
def test_storyboard_shots_are_screened_too():
    api = client_for(UserFactory())
    response = api.post(
        "/api/v1/generations",
        {
            "prompt": "a calm day",
            "size": "512x512",
            "storyboard": [
                {"prompt": "a calm beach", "seconds": 2},
                {"prompt": "then a guy slits his wrists in the bath", "seconds": 2},
            ],
        },
        format="json",
    )
    assert_error(response, 400, code="content_policy_self_harm", param="prompt")
    assert not GenerationJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_openai_shape_refusal_and_a_rights_holders_term():
    holder = RightsHolder.objects.create(name="Nebula Studios")
    ProtectedTerm.objects.create(holder=holder, term="Captain Nebula", normalized="captain nebula")
    api = client_for(UserFactory())
    response = api.post("/v1/videos", {"prompt": "Captain Nebula saves the day"}, format="json")
    assert_error(response, 400, code="content_policy_rights", param="prompt")


@pytest.mark.django_db
def test_a_clean_prompt_passes_and_is_annotated():
    api = client_for(UserFactory())
    response = api.post(
        "/api/v1/generations", {"prompt": "a red ball bouncing", "size": "512x512"}, format="json"
    )
    assert response.status_code == 201, response.content
    job = GenerationJob.objects.get()
    assert job.annotations["screening"] == {"create": "allow", "categories": []}
    assert ScreeningDecision.objects.get().verdict == "allow"


def _post_processing_job(frames=None, plan=None) -> GenerationJob:
    """A job as the CPU worker holds it when the completion gates run: its signed video
    already stored under the running attempt."""
    owner = UserFactory()
    job = GenerationJob.objects.create(
        user=owner,
        prompt="a textured wall",
        model="sora-2",
        engine="previs",
        seconds=2,
        size="128x128",
        seed=1,
        params={},
        params_hash="0" * 64,
        plan=plan or {"dialogue": [{"text": "what a nice wall", "start_s": 0.2}], "shots": []},
        status=JobStatus.IN_PROGRESS,
        stage=JobStage.POSTPROCESSING,
        lease_owner="worker-a",
    )
    attempt = JobAttempt.objects.create(job=job, stage=JobStage.POSTPROCESSING, worker="worker-a")
    if frames is not None:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "v.mp4"
            encode_mp4(frames, None, out, fps=24, settings=EncodeSettings(crf=18))
            default_storage.save(
                f"clips/{job.id.hex}/{attempt.pk}/video.mp4", ContentFile(out.read_bytes())
            )
    return job


@pytest.mark.django_db
def test_output_screening_passes_a_clean_clip_and_records_what_it_scored():
    job = _post_processing_job(textured_frames(1))
    screening_gate(job, COMPLETE)
    decision = ScreeningDecision.objects.get(phase="complete")
    assert decision.verdict == "allow"
    assert decision.context["frames_scored"] == 2
    assert decision.context["nudity_max"] < 0.45
    assert job.annotations["screening"]["complete"] == "allow"


@pytest.mark.django_db
def test_a_hash_bank_match_blocks_the_clip_and_a_disabled_bank_does_not():
    frames = textured_frames(7)
    bank = HashBank.objects.create(name="known-bad", threshold=31)
    BankedHash.objects.create(bank=bank, hash=pdq(frames[0])[0], added_by="staff:1")
    job = _post_processing_job(frames)
    with pytest.raises(GateRefused) as refused:
        screening_gate(job, COMPLETE)
    assert refused.value.code == "content_policy_hash_match"
    decision = ScreeningDecision.objects.get(phase="complete")
    assert decision.verdict == "block"
    assert decision.reasons[0]["source"] == "hash_bank"
    assert decision.reasons[0]["matched"] == "known-bad"
    assert decision.reasons[0]["score"] <= 31  # distance after an H.264 round trip

    HashBank.objects.filter(pk=bank.pk).update(enabled=False)
    screening_gate(_post_processing_job(frames), COMPLETE)  # no refusal


@pytest.mark.django_db
def test_a_hold_bank_holds_the_clip_when_it_is_created_and_opens_a_case():
    frames = textured_frames(9)
    bank = HashBank.objects.create(name="review-me", action="hold")
    BankedHash.objects.create(bank=bank, hash=pdq(frames[0])[0], added_by="staff:1")
    job = _post_processing_job(frames)
    screening_gate(job, COMPLETE)
    clip = Clip.objects.create(
        job=job,
        user=job.user,
        duration_s=2,
        width=128,
        height=128,
        bytes=1,
        sha256="0" * 64,
        manifest={"state": "trusted"},
        watermark=b"12345678",
    )
    clip.refresh_from_db()
    assert clip.held_at is not None and "hash_match" in clip.hold_reason
    case = Case.objects.get(queue="screening")
    assert case.subject_id == job.public_id and case.category == "hash_match"


@pytest.mark.django_db
def test_a_harmful_spoken_line_blocks_the_output():
    plan = {"dialogue": [{"text": "go kill yourself, nobody loves you", "start_s": 0}]}
    job = _post_processing_job(textured_frames(2), plan=plan)
    with pytest.raises(GateRefused) as refused:
        screening_gate(job, COMPLETE)
    assert refused.value.code in ("content_policy_self_harm", "content_policy_harassment")


@pytest.mark.django_db
def test_output_screening_fails_closed_when_the_video_cannot_be_read():
    """No readable video (a classifier cannot run): the clip is held, never published."""
    job = _post_processing_job(frames=None)
    screening_gate(job, COMPLETE)
    assert job.annotations["moderation_hold"]["category"] == "screening_unavailable"
    decision = ScreeningDecision.objects.get(phase="complete")
    assert (decision.verdict, decision.classifier_version) == ("hold", "unavailable")


@pytest.mark.django_db(transaction=True)
def test_input_screening_fails_closed_with_503(monkeypatch):
    """The embedding model failing to load is outside the request's control: the prompt is
    refused with 503, never rendered unscreened."""
    from moderation.classifiers import text

    def broken(texts):
        raise OSError("model files unreadable")

    monkeypatch.setattr("core.embeddings.embed", broken)
    monkeypatch.setattr(text, "_state", {})
    api = client_for(UserFactory())
    response = api.post(
        "/api/v1/generations", {"prompt": "a red ball", "size": "512x512"}, format="json"
    )
    assert_error(response, 503, code="screening_unavailable")
    assert not GenerationJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_text_check_refuses_a_comment_and_records_it():
    from core.errors import InvalidRequest
    from moderation.screening import text_check

    author = UserFactory()
    with pytest.raises(InvalidRequest) as refused:
        text_check(
            text="k y s, nobody loves you", user=author, subject_type="comment", param="body"
        )
    assert refused.value.param == "body"
    assert refused.value.code in ("content_policy_self_harm", "content_policy_harassment")
    text_check(text="lovely video!", user=author, subject_type="comment")
    verdicts = sorted(ScreeningDecision.objects.values_list("verdict", flat=True))
    assert verdicts == ["allow", "block"]
