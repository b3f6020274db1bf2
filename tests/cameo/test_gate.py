"""The consent gate: what it writes on a job, what it refuses, and its second check."""

from __future__ import annotations

import pytest

from accounts.models import Notification
from accounts.services import user_block
from cameo import services
from cameo.gates import consent_gate
from cameo.models import Appearance, Cameo, LedgerEntry
from generation.gates import GateRefused
from generation.models import GenerationJob, JobStage, JobStatus
from tests.cameo.helpers import actions, befriend, character, generate, job_from, person_cameo
from tests.factories import TeenFactory, UserFactory
from tests.fixtures import client_for
from tests.support.errors import assert_error

pytestmark = pytest.mark.django_db


def test_a_permitted_use_writes_the_contracted_annotations_and_ledger_entry(alice, bob):
    cameo = person_cameo(alice, instructions="wears a red scarf", restrictions=["politics"])
    befriend(alice, bob)
    job = job_from(generate(client_for(bob), "@alice waves at the sea"))
    use = LedgerEntry.objects.get(cameo=cameo, action="used")
    assert use.actor == f"user:{bob.pk}"
    assert use.data == {"video": job.public_id, "kind": "create", "via": "prompt"}
    assert job.annotations == {
        "cameos": [
            {
                "handle": "alice",
                "engine_key": "alice",
                "cameo_id": cameo.public_id,
                "owner_id": str(alice.pk),
                "kind": "person",
                "instructions": "wears a red scarf",
                "restrictions": ["politics"],
                "ledger_entry": use.entry_hash,
            }
        ],
        "cameo_images": {"alice": cameo.reference_image},
        "consent": [
            {
                "ledger_entry_id": use.entry_hash,
                "cameo_id": cameo.public_id,
                "details": {"owner": "alice", "action": "use", "at": use.at.isoformat()},
            }
        ],
    }
    assert cameo.reference_image.startswith(f"private/cameos/{cameo.id.hex}/")
    appearance = Appearance.objects.get(cameo=cameo)
    assert (appearance.job_id, appearance.user_id, appearance.via) == (job.pk, bob.pk, "prompt")
    assert appearance.ledger_entry == use.entry_hash
    note = Notification.objects.get(user=alice, kind="cameo_used")
    assert note.actor_id == bob.pk and note.data["video_id"] == job.public_id


def test_the_engine_key_is_the_mention_as_the_planner_reads_it():
    ann = UserFactory(handle="ann.lee")
    cameo = person_cameo(ann, audience="everyone")
    job = job_from(generate(client_for(UserFactory()), "@ann.lee juggles three balls"))
    assert job.annotations["cameo_images"] == {"ann": cameo.reference_image}


def test_two_cameos_the_engine_cannot_tell_apart_are_refused():
    person_cameo(UserFactory(handle="ann.lee"), audience="everyone")
    person_cameo(UserFactory(handle="ann"), audience="everyone")
    response = generate(client_for(UserFactory()), "@ann.lee and @ann dance")
    assert_error(response, 400, code="ambiguous_cameos", param="prompt")
    assert not GenerationJob.objects.exists() and not Appearance.objects.exists()


def test_no_more_cameos_than_the_limit(settings, bob):
    settings.CAMEO_MAX_PER_CLIP = 2
    for handle in ("ava", "ben", "cyd"):
        person_cameo(UserFactory(handle=handle), audience="everyone")
    entries = LedgerEntry.objects.count()
    response = generate(client_for(bob), "@ava @ben and @cyd sing")
    assert_error(response, 400, code="too_many_cameos", param="prompt")
    assert LedgerEntry.objects.count() == entries and not GenerationJob.objects.exists()
    assert generate(client_for(bob), "@ava and @ben sing").status_code == 201


def test_unknown_hidden_and_unverified_cameos_get_one_answer(alice, bob):
    person_cameo(alice, audience="only_me")
    # Still being verified: not usable, whatever its audience.
    Cameo.objects.create(
        owner=UserFactory(handle="penny"),
        kind="person",
        handle="penny",
        status="pending",
        audience="everyone",
    )
    api = client_for(bob)
    messages = []
    for handle in ("alice", "nobody_at_all", "penny"):
        error = assert_error(
            generate(api, f"@{handle} waves"), 403, code="cameo_unavailable", param="prompt"
        )
        messages.append(error["message"].replace(handle, "X"))
    assert len(set(messages)) == 1
    assert not GenerationJob.objects.exists()


def test_every_variant_records_its_own_use(alice, bob):
    cameo = person_cameo(alice, audience="everyone")
    response = generate(client_for(bob), "@alice jumps", variants=2)
    assert response.status_code == 201
    assert actions(cameo).count("used") == 2
    hashes = {job.annotations["cameos"][0]["ledger_entry"] for job in GenerationJob.objects.all()}
    assert len(hashes) == 2


def _completed(job: GenerationJob) -> GenerationJob:
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.COMPLETED, stage=JobStage.DONE, plan=None
    )
    job.refresh_from_db()
    return job


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/videos/{id}/remix", {"prompt": "a cat dances in the rain"}),
        ("/v1/videos/edits", {"prompt": "make the sky purple", "video": {"id": "{id}"}}),
        (
            "/v1/videos/extensions",
            {"prompt": "a cat walks away", "seconds": "4", "video": {"id": "{id}"}},
        ),
    ],
)
def test_a_derived_video_cannot_launder_a_cameo_whose_access_was_withdrawn(alice, bob, path, body):
    cameo = person_cameo(alice, audience="approved")
    grant = services.grant_create(cameo=cameo, grantee=bob, actor=alice)
    api = client_for(bob)
    parent = _completed(job_from(generate(api, "@alice rides a bike")))
    services.grant_revoke(grant=grant, actor=alice)
    jobs = GenerationJob.objects.count()
    uses = actions(cameo).count("used")
    url = path.replace("{id}", parent.public_id)
    payload = {k: ({"id": parent.public_id} if k == "video" else v) for k, v in body.items()}
    response = api.post(url, payload, format="json")
    error = assert_error(
        response, 403, code="cameo_unavailable", param=response.json()["error"]["param"]
    )
    assert error["param"] in ("video", "prompt")
    assert GenerationJob.objects.count() == jobs and actions(cameo).count("used") == uses


def test_a_permitted_remix_carries_the_parents_cameo(alice, bob):
    cameo = person_cameo(alice, audience="everyone")
    api = client_for(bob)
    parent = _completed(job_from(generate(api, "@alice rides a bike")))
    response = api.post(
        f"/v1/videos/{parent.public_id}/remix", {"prompt": "a cat dances"}, format="json"
    )
    assert response.status_code == 200, response.content
    child = GenerationJob.objects.get(parent=parent)
    assert [c["cameo_id"] for c in child.annotations["cameos"]] == [cameo.public_id]
    assert Appearance.objects.get(job=child).via == "parent"


def test_the_second_check_refuses_a_job_whose_consent_went_away(alice, bob):
    cameo = person_cameo(alice)
    befriend(alice, bob)
    job = job_from(generate(client_for(bob), "@alice waves"))
    consent_gate(job, "complete")  # still permitted
    # A block is made in accounts, which stops nothing: the completion check must catch it.
    user_block(blocker=alice, blocked=bob)
    with pytest.raises(GateRefused) as refused:
        consent_gate(job, "complete")
    assert refused.value.code == "cameo_consent_withdrawn"
    assert cameo.status == "verified"


def test_the_second_check_refuses_when_the_owner_removed_the_appearance(alice, bob):
    person_cameo(alice, audience="everyone")
    job = job_from(generate(client_for(bob), "@alice waves"))
    appearance = Appearance.objects.get(job=job)
    services.appearance_remove(appearance=appearance, actor=alice)
    job.refresh_from_db()
    assert job.status == JobStatus.BLOCKED and job.error_code == "cameo_consent_withdrawn"
    with pytest.raises(GateRefused):
        consent_gate(job, "complete")


def test_a_job_naming_cameos_the_first_check_never_resolved_cannot_complete(bob):
    job = GenerationJob.objects.create(
        user=bob,
        prompt="@alice waves",
        model="sora-2",
        engine="previs",
        seconds=1,
        size="512x512",
        seed=1,
        params={"cameos": ["alice"]},
        params_hash="0" * 64,
    )
    with pytest.raises(GateRefused):
        consent_gate(job, "complete")


def test_a_teens_cameo_starts_closed_and_never_opens_to_everyone():
    teen = TeenFactory(handle="tess")
    cameo = person_cameo(teen)
    assert cameo.audience == "only_me"
    api = client_for(teen)
    response = api.patch(
        f"/api/v1/cameos/{cameo.public_id}", {"audience": "everyone"}, format="json"
    )
    assert_error(response, 403, code="audience_not_allowed", param="audience")
    cameo.refresh_from_db()
    assert cameo.audience == "only_me" and actions(cameo) == ["verified"]
    friend = UserFactory()
    befriend(teen, friend)
    assert generate(client_for(friend), "@tess waves").status_code == 403
    assert (
        api.patch(
            f"/api/v1/cameos/{cameo.public_id}", {"audience": "mutuals"}, format="json"
        ).status_code
        == 200
    )
    assert generate(client_for(friend), "@tess waves").status_code == 201


def test_a_character_is_used_like_any_cameo(alice, bob):
    pet = character(alice, handle="biscuit_dog")
    assert pet.audience == "mutuals"
    assert_error(
        generate(client_for(bob), "@biscuit_dog runs"),
        403,
        code="cameo_unavailable",
        param="prompt",
    )
    befriend(alice, bob)
    job = job_from(generate(client_for(bob), "@biscuit_dog runs"))
    assert job.annotations["cameos"][0]["kind"] == "character"
    assert job.annotations["cameo_images"] == {"biscuit_dog": pet.reference_image}


def _stitch(api, *jobs, prompt="and then night falls"):
    body = {"videos": [job.public_id for job in jobs], "prompt": prompt}
    return api.post("/api/v1/generations/stitch", body, format="json")


def _inherited(api, parent: GenerationJob) -> GenerationJob:
    """A remix whose own prompt names nobody: it shows the parent's cameo all the same."""
    response = api.post(
        f"/v1/videos/{parent.public_id}/remix", {"prompt": "a cat dances"}, format="json"
    )
    assert response.status_code == 200, response.content
    return _completed(GenerationJob.objects.get(parent=parent))


def test_a_stitch_cannot_launder_a_cameo_shown_by_any_clip_it_joins(alice, bob):
    cameo = person_cameo(alice, audience="approved")
    grant = services.grant_create(cameo=cameo, grantee=bob, actor=alice)
    api = client_for(bob)
    plain = _completed(job_from(generate(api, "a quiet lake at dawn")))
    shows_alice = _inherited(api, _completed(job_from(generate(api, "@alice rides a bike"))))
    services.grant_revoke(grant=grant, actor=alice)
    jobs, uses = GenerationJob.objects.count(), actions(cameo).count("used")
    # The cameo is in the second clip, and only through its annotations (not its prompt).
    assert_error(_stitch(api, plain, shows_alice), 403, code="cameo_unavailable", param="video")
    assert GenerationJob.objects.count() == jobs and actions(cameo).count("used") == uses


def test_a_permitted_stitch_carries_the_cameos_of_every_clip(alice, bob):
    cameo = person_cameo(alice, audience="everyone")
    api = client_for(bob)
    plain = _completed(job_from(generate(api, "a quiet lake at dawn")))
    shows_alice = _inherited(api, _completed(job_from(generate(api, "@alice rides a bike"))))
    response = _stitch(api, plain, shows_alice)
    assert response.status_code == 201, response.content
    stitch = job_from(response)
    assert [c["cameo_id"] for c in stitch.annotations["cameos"]] == [cameo.public_id]
    assert Appearance.objects.get(job=stitch).via == "parent"
    # Withdrawn while the stitch renders: the second check refuses it.
    user_block(blocker=alice, blocked=bob)
    with pytest.raises(GateRefused) as refused:
        consent_gate(stitch, "complete")
    assert refused.value.code == "cameo_consent_withdrawn"
