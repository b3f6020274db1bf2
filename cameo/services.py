"""Writes for cameos: onboarding, characters, grants, preferences, appearances, revocation.

Every consent change locks the cameo row, records a ledger entry in the same transaction and
commits; only then are in-flight jobs stopped and the owner's policy applied to existing clips.
The consent gate reads cameos under a shared lock (cameo.gates), so a change either commits
before a job's check reads it, or after that job's clip exists — where the policy finds it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from accounts.selectors import is_blocked_either_way
from accounts.services import notification_create
from cameo import ledger, media, permissions
from cameo.models import (
    ADULT_DEFAULT_AUDIENCE,
    LIVE_STATUSES,
    TEEN_AUDIENCES,
    TEEN_DEFAULT_AUDIENCE,
    Appearance,
    Audience,
    Cameo,
    CameoGrant,
    CameoKind,
    CameoStatus,
    Challenge,
    GrantStatus,
    RecordingCheck,
    RevocationPolicy,
)
from cameo.permissions import AUDIENCE_ORDER
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound, PayloadTooLarge

logger = logging.getLogger("montage.cameo")

CONSENT_WITHDRAWN = "cameo_consent_withdrawn"
MAX_VERIFY_ATTEMPTS = 3
MAX_RESTRICTIONS = 20
MAX_RESTRICTION_CHARS = 60
CHARACTER_HANDLE = re.compile(r"^[a-z0-9_]{3,30}$")


def actor_of(user) -> str:
    return f"staff:{user.pk}" if user.is_staff else f"user:{user.pk}"


def _lock(cameo: Cameo) -> Cameo:
    return Cameo.objects.select_for_update().select_related("owner").get(pk=cameo.pk)


def default_audience(owner: User) -> str:
    return TEEN_DEFAULT_AUDIENCE if owner.is_teen else ADULT_DEFAULT_AUDIENCE


def _check_audience(owner: User, audience: str) -> str:
    if audience not in Audience.values:
        raise InvalidRequest(
            f"audience must be one of {', '.join(Audience.values)}.",
            code="invalid_audience",
            param="audience",
        )
    if owner.is_teen and audience not in TEEN_AUDIENCES:
        # Safety: a teen's likeness is never open to everyone.
        raise Forbidden(
            "Teen accounts cannot open their cameo to everyone.",
            code="audience_not_allowed",
            param="audience",
        )
    cap = permissions.parental_cap(owner) if owner.is_teen else None
    if cap is not None and AUDIENCE_ORDER.index(audience) > AUDIENCE_ORDER.index(cap):
        # Safety: a linked parent's cap only ever narrows a teen's cameo.
        raise Forbidden(
            f"A parent limited this cameo's audience to {cap}.",
            code="parental_control",
            param="audience",
        )
    return audience


# --- Onboarding (people) ---------------------------------------------------------------------


def _refuse_if_has_live_person_cameo(user: User) -> None:
    if Cameo.objects.filter(owner=user, kind=CameoKind.PERSON, status__in=LIVE_STATUSES).exists():
        raise Conflict(
            "You already have a cameo; delete it before making a new one.", code="cameo_exists"
        )


def challenge_create(*, user: User) -> Challenge:
    from cameo.verification import challenge_new

    _refuse_if_has_live_person_cameo(user)
    payload = challenge_new()
    now = timezone.now()
    return Challenge.objects.create(
        user=user,
        digits=list(payload["digits"]),
        turns=list(payload["turns"]),
        payload=payload,
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.CAMEO_CHALLENGE_TTL),
    )


def challenges_purge(*, older_than: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Deletes challenges that expired unused more than ``older_than`` ago."""
    cutoff = timezone.now() - older_than
    deleted, _ = Challenge.objects.filter(used_at__isnull=True, expires_at__lt=cutoff).delete()
    return deleted


def recording_submit(*, user: User, challenge: Challenge, upload: UploadedFile) -> Cameo:
    """Takes the recording that answers ``challenge`` (once) and starts verifying it."""
    from cameo.tasks import enqueue_verification

    if upload.size > settings.CAMEO_MAX_RECORDING_BYTES:
        raise PayloadTooLarge(
            f"A recording may be at most {settings.CAMEO_MAX_RECORDING_BYTES} bytes.",
            param="recording",
        )
    with transaction.atomic():
        challenge = Challenge.objects.select_for_update().get(pk=challenge.pk)
        # Safety: a challenge answers one recording, within its lifetime.
        if challenge.used_at is not None:
            raise Conflict(
                "This challenge was already used; request a new one.",
                code="challenge_used",
                param="challenge_id",
            )
        if challenge.expires_at <= timezone.now():
            raise Conflict(
                "This challenge has expired; request a new one.",
                code="challenge_expired",
                param="challenge_id",
            )
        _refuse_if_has_live_person_cameo(user)
        if Cameo.objects.filter(handle=user.handle, status__in=LIVE_STATUSES).exists():
            raise Conflict(
                "Your handle is taken by a character; contact support.", code="handle_taken"
            )
        cameo = Cameo.objects.create(
            owner=user,
            kind=CameoKind.PERSON,
            handle=user.handle,
            name=user.display_name or user.handle,
            status=CameoStatus.PENDING,
            audience=default_audience(user),
        )
        challenge.used_at = timezone.now()
        challenge.cameo = cameo
        challenge.save(update_fields=["used_at", "cameo"])
        upload.seek(0)
        suffix = (
            (upload.name or "").rsplit(".", 1)[-1].lower() if "." in (upload.name or "") else ""
        )
        name = f"recording.{suffix}" if suffix.isalnum() and len(suffix) <= 5 else "recording"
        cameo.source_media = media.save(cameo, name, upload.read())
        cameo.save(update_fields=["source_media"])
        check = RecordingCheck.objects.create(cameo=cameo, challenge=challenge)
        ledger.append(
            cameo=cameo,
            actor=actor_of(user),
            action="created",
            data={
                "kind": CameoKind.PERSON,
                "handle": cameo.handle,
                "challenge": challenge.public_id,
            },
        )
        enqueue_verification(check)
    return cameo


def _store_reference(cameo: Cameo, frames, voice: bytes | None) -> None:
    names = [media.save(cameo, f"frame-{i}.png", media.png_bytes(f)) for i, f in enumerate(frames)]
    cameo.reference_frames = names
    cameo.reference_image = names[0] if names else ""
    if voice:
        cameo.voice_sample = media.save(cameo, "voice.wav", voice)


def _drop_recording(cameo: Cameo) -> None:
    from django.core.files.storage import default_storage

    name, cameo.source_media = cameo.source_media, ""
    if name:
        transaction.on_commit(lambda: default_storage.delete(name))


def cameo_verified_set(*, cameo: Cameo, actor: str, frames, voice: bytes | None = None, **data):
    """Marks a cameo verified with its reference frames (best first) and voice sample."""
    if not frames:
        raise InvalidRequest("A verified cameo needs at least one reference frame.")
    with transaction.atomic():
        cameo = _lock(cameo)
        if cameo.status not in (CameoStatus.PENDING, CameoStatus.NEEDS_REVIEW):
            raise Conflict(f"The cameo is {cameo.status}.", code="cameo_not_pending")
        _store_reference(cameo, frames, voice)
        cameo.status = CameoStatus.VERIFIED
        cameo.verified_at = timezone.now()
        _drop_recording(cameo)
        cameo.save()
        ledger.append(cameo=cameo, actor=actor, action="verified", data=data)
    return cameo


def _undecided(detail: str):
    from cameo.verification import VerificationResult

    reason = {"check": "verifier", "ok": False, "verdict": "review", "detail": detail}
    return VerificationResult(decision="review", reasons=[reason], fingerprint=None)


def verification_run(*, check: RecordingCheck) -> RecordingCheck:
    """Runs the verifier over a submitted recording and applies its decision. A verifier that
    crashes, or whose worker keeps dying, leaves the decision to a person."""
    from cameo.verification import verify_recording

    cameo = check.cameo
    if (
        check.finished_at is not None
        or cameo.status != CameoStatus.PENDING
        or not cameo.source_media
    ):
        return check
    RecordingCheck.objects.filter(pk=check.pk).update(attempts=F("attempts") + 1)
    check.refresh_from_db(fields=["attempts"])
    if check.attempts > MAX_VERIFY_ATTEMPTS:
        return verification_apply(check=check, result=_undecided("the verifier did not finish"))
    known = [
        bytes(fp)
        for fp in RecordingCheck.objects.exclude(pk=check.pk)
        .exclude(fingerprint=None)
        .values_list("fingerprint", flat=True)
    ]
    suffix = "." + cameo.source_media.rsplit(".", 1)[-1] if "." in cameo.source_media else ""
    try:
        with media.local_copy(cameo.source_media, suffix=suffix) as path:
            result = verify_recording(
                path,
                digits=list(check.challenge.digits),
                turns=list(check.challenge.turns),
                known_fingerprints=known,
            )
    except Exception as exc:
        logger.exception("cameo %s: the verifier failed", cameo.public_id)
        result = _undecided(f"the verifier failed ({type(exc).__name__})")
    return verification_apply(check=check, result=result)


def _reasons(result) -> list[dict]:
    kept = ("check", "ok", "verdict", "detail")
    return [
        {key: (bool(r[key]) if key == "ok" else str(r[key])) for key in kept if key in r}
        for r in (result.reasons or [])
    ]


def verification_apply(*, check: RecordingCheck, result) -> RecordingCheck:
    """Records the verifier's result and acts on it: pass verifies, fail rejects (and purges
    the media), review stores the frames and asks staff (moderation's cameo_verification
    queue)."""
    reasons = _reasons(result)
    failed = [r["check"] for r in reasons if not r["ok"]]
    frames = list(result.reference_frames or [])
    decision = result.decision if result.decision in ("pass", "fail") else "review"
    if decision == "pass" and not frames:
        # Safety: a pass without a usable face crop gives the engine no likeness; a person
        # decides instead.
        decision = "review"
    with transaction.atomic():
        check = RecordingCheck.objects.select_for_update().get(pk=check.pk)
        cameo = _lock(check.cameo)
        if check.finished_at is not None:
            return check
        check.decision = decision
        check.reasons = reasons
        check.fingerprint = result.fingerprint
        check.finished_at = timezone.now()
        check.save()
        if cameo.status != CameoStatus.PENDING:
            return check  # deleted while it was being checked
        cameo.verification = {"decision": decision, "reasons": reasons}
        cameo.save(update_fields=["verification"])
        if decision == "pass":
            cameo_verified_set(
                cameo=cameo,
                actor="system",
                frames=frames,
                voice=result.voice_sample,
                checks=[r["check"] for r in reasons],
            )
        elif decision == "review":
            _store_reference(cameo, frames, result.voice_sample)
            cameo.status = CameoStatus.NEEDS_REVIEW
            cameo.save()
            ledger.append(
                cameo=cameo, actor="system", action="review_requested", data={"failed": failed}
            )
            _open_review_case(cameo, reasons)
        else:
            cameo.status = CameoStatus.REJECTED
            _drop_recording(cameo)
            cameo.save()
            ledger.append(cameo=cameo, actor="system", action="rejected", data={"failed": failed})
            transaction.on_commit(lambda: media.purge(cameo))
    return check


def _open_review_case(cameo: Cameo, reasons: list[dict]) -> None:
    from moderation.services import case_open

    case_open(
        queue="cameo_verification",
        subject_type="cameo",
        subject_id=cameo.public_id,
        category="liveness",
        severity=2,
        summary=f"Liveness check for @{cameo.handle} needs a person to decide.",
        payload={"reasons": reasons},
    )


def verification_case_resolve(*, case, decision: str, actor: str, note: str = "") -> None:
    """moderation's resolver for the ``cameo_verification`` queue (inside its transaction)."""
    from cameo.models import parse_public_id

    pk = parse_public_id(getattr(case, "subject_id", "") or "")
    cameo = Cameo.objects.filter(pk=pk).first() if pk else None
    if cameo is None:
        return
    cameo = _lock(cameo)
    if cameo.status != CameoStatus.NEEDS_REVIEW:
        return
    if decision == "approve" and not cameo.reference_frames:
        # Raising aborts the staff decision: there is no face crop to give the engine.
        raise Conflict(
            "The recording gave no usable face crop; it can only be rejected.",
            code="no_reference_frames",
        )
    if decision == "approve":
        cameo.status = CameoStatus.VERIFIED
        cameo.verified_at = timezone.now()
        _drop_recording(cameo)
        cameo.save()
        ledger.append(cameo=cameo, actor=actor, action="verified", data={"review": note[:500]})
        return
    cameo.status = CameoStatus.REJECTED
    _drop_recording(cameo)
    cameo.save()
    ledger.append(cameo=cameo, actor=actor, action="rejected", data={"review": note[:500]})
    transaction.on_commit(lambda: media.purge(cameo))


# --- Characters ------------------------------------------------------------------------------


def _character_handle(name: str, handle: str | None) -> str:
    if handle:
        candidate = User.normalize_handle(handle)
        if not CHARACTER_HANDLE.match(candidate):
            raise InvalidRequest(
                "A character handle is 3-30 lowercase letters, digits and '_'.",
                code="invalid_handle",
                param="handle",
            )
        return candidate
    candidate = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:30]
    if len(candidate) < 3:
        raise InvalidRequest(
            "Give the character a handle (3-30 lowercase letters, digits and '_').",
            code="invalid_handle",
            param="handle",
        )
    return candidate


def character_create(
    *,
    owner: User,
    name: str,
    upload: UploadedFile,
    rights_attested: bool,
    handle: str | None = None,
) -> Cameo:
    """A character (pet, object, drawing) from an image or a short clip. No liveness check:
    the owner attests holding the rights to it, and that attestation is in the ledger."""
    if not rights_attested:
        raise InvalidRequest(
            "Creating a character requires attesting that you hold the rights to it: send "
            "rights_attested=true.",
            code="rights_not_attested",
            param="rights_attested",
        )
    name = (name or "").strip()
    if not 1 <= len(name) <= 80:
        raise InvalidRequest("name must be 1-80 characters.", code="invalid_name", param="name")
    handle = _character_handle(name, handle)
    if upload.size > settings.CAMEO_MAX_CHARACTER_BYTES:
        raise PayloadTooLarge(
            f"A character's file may be at most {settings.CAMEO_MAX_CHARACTER_BYTES} bytes.",
            param="video",
        )
    data = upload.read()
    frame = media.reference_from_upload(data, param="video")
    # Safety: a character may not take a person's handle — it would let an @mention of that
    # person resolve to somebody else's upload.
    taken = (
        User.objects.filter(handle=handle).exists()
        or Cameo.objects.filter(handle=handle, status__in=LIVE_STATUSES).exists()
    )
    if taken:
        raise Conflict("That handle is taken.", code="handle_taken", param="handle")
    try:
        with transaction.atomic():
            now = timezone.now()
            cameo = Cameo.objects.create(
                owner=owner,
                kind=CameoKind.CHARACTER,
                handle=handle,
                name=name,
                status=CameoStatus.VERIFIED,
                audience=default_audience(owner),
                rights_attested_at=now,
                verified_at=now,
            )
            cameo.source_media = media.save(cameo, "source", data)
            cameo.reference_image = media.save(cameo, "frame-0.png", media.png_bytes(frame))
            cameo.reference_frames = [cameo.reference_image]
            cameo.save()
            ledger.append(
                cameo=cameo,
                actor=actor_of(owner),
                action="created",
                data={"kind": CameoKind.CHARACTER, "handle": handle, "rights_attested": True},
            )
    except IntegrityError as exc:
        raise Conflict("That handle is taken.", code="handle_taken", param="handle") from exc
    return cameo


# --- Preferences -----------------------------------------------------------------------------


def _clean_restrictions(raw) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise InvalidRequest(
            "restrictions must be a list of topics.",
            code="invalid_restrictions",
            param="restrictions",
        )
    topics = []
    for item in raw:
        topic = " ".join(item.split()).lower()
        if not topic or len(topic) > MAX_RESTRICTION_CHARS:
            raise InvalidRequest(
                f"Each restriction is 1-{MAX_RESTRICTION_CHARS} characters.",
                code="invalid_restrictions",
                param="restrictions",
            )
        if topic not in topics:
            topics.append(topic)
    if len(topics) > MAX_RESTRICTIONS:
        raise InvalidRequest(
            f"At most {MAX_RESTRICTIONS} restrictions.",
            code="invalid_restrictions",
            param="restrictions",
        )
    return topics


def cameo_settings_update(*, cameo: Cameo, actor: User, **changes) -> Cameo:
    """Changes audience, instructions, restrictions or revocation policy; each is a ledger
    entry. A narrower audience stops the jobs of everyone it now excludes."""
    allowed = {"audience", "instructions", "restrictions", "revocation_policy"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidRequest(f"Unknown fields: {', '.join(sorted(unknown))}", code="unknown_field")
    if "audience" in changes:
        _check_audience(cameo.owner, changes["audience"])
    if "restrictions" in changes:
        changes["restrictions"] = _clean_restrictions(changes["restrictions"])
    if "instructions" in changes:
        changes["instructions"] = (changes["instructions"] or "").strip()
        if len(changes["instructions"]) > 500:
            raise InvalidRequest(
                "instructions may be at most 500 characters.",
                code="invalid_instructions",
                param="instructions",
            )
    if changes.get("revocation_policy", RevocationPolicy.TAKE_DOWN) not in RevocationPolicy.values:
        raise InvalidRequest(
            "revocation_policy must be keep_published or take_down.",
            code="invalid_policy",
            param="revocation_policy",
        )
    with transaction.atomic():
        cameo = _lock(cameo)
        _require_changeable(cameo)
        who = actor_of(actor)
        audience_changed = False
        if "audience" in changes and changes["audience"] != cameo.audience:
            ledger.append(
                cameo=cameo,
                actor=who,
                action="audience_changed",
                data={"from": cameo.audience, "to": changes["audience"]},
            )
            cameo.audience = changes["audience"]
            audience_changed = True
        prefs = {
            key: changes[key]
            for key in ("instructions", "restrictions")
            if key in changes and changes[key] != getattr(cameo, key)
        }
        if prefs:
            ledger.append(cameo=cameo, actor=who, action="preferences_changed", data=prefs)
            for key, value in prefs.items():
                setattr(cameo, key, value)
        policy = changes.get("revocation_policy")
        if policy and policy != cameo.revocation_policy:
            ledger.append(cameo=cameo, actor=who, action="policy_changed", data={"to": policy})
            cameo.revocation_policy = policy
        cameo.save()
    if audience_changed:
        consent_enforce(cameo=cameo, actor=who, policy=cameo.revocation_policy)
    return cameo


def _require_changeable(cameo: Cameo) -> None:
    if cameo.status in (CameoStatus.REVOKED, CameoStatus.DELETED, CameoStatus.REJECTED):
        raise Conflict(f"The cameo is {cameo.status}.", code="cameo_not_active")


# --- Grants ----------------------------------------------------------------------------------


def _grant_record(cameo: Cameo, grant: CameoGrant, *, actor: str, action: str, **extra) -> None:
    data = {"grant": str(grant.pk), "grantee": f"user:{grant.grantee_id}", **extra}
    ledger.append(cameo=cameo, actor=actor, action=action, data=data)


def _notify_granted(cameo: Cameo, grant: CameoGrant) -> None:
    notification_create(
        user=grant.grantee,
        kind="cameo_access_granted",
        actor=cameo.owner,
        data={"cameo_id": cameo.public_id, "handle": cameo.handle},
    )


def access_request(*, requester: User, handle: str) -> None:
    """Asks a cameo's owner for access. Answers the same whether or not the cameo exists, is
    visible, or the request was recorded: asking must not reveal who has a cameo."""
    from cameo.selectors import cameo_by_handle

    cameo = cameo_by_handle(handle)
    if (
        cameo is None
        or cameo.status != CameoStatus.VERIFIED
        or cameo.owner_id == requester.pk
        or cameo.audience in (Audience.ONLY_ME, Audience.EVERYONE)
        or is_blocked_either_way(cameo.owner, requester)
    ):
        return
    with transaction.atomic():
        cameo = _lock(cameo)
        if CameoGrant.objects.filter(
            cameo=cameo, grantee=requester, status__in=[GrantStatus.PENDING, GrantStatus.ACCEPTED]
        ).exists():
            return
        grant = CameoGrant.objects.create(
            cameo=cameo, grantee=requester, status=GrantStatus.PENDING, requested=True
        )
        _grant_record(cameo, grant, actor=actor_of(requester), action="access_requested")
        notification_create(
            user=cameo.owner,
            kind="cameo_access_requested",
            actor=requester,
            data={
                "cameo_id": cameo.public_id,
                "grant_id": str(grant.pk),
                "handle": requester.handle,
            },
        )


def grant_create(*, cameo: Cameo, grantee: User, actor: User) -> CameoGrant:
    """The owner gives ``grantee`` access (accepting their pending request if there is one)."""
    if grantee.pk == cameo.owner_id:
        raise InvalidRequest("You always have access to your own cameo.", code="cannot_grant_self")
    if is_blocked_either_way(cameo.owner, grantee):
        raise NotFound("No such user.", code="user_not_found", param="handle")
    with transaction.atomic():
        cameo = _lock(cameo)
        _require_changeable(cameo)
        grant = CameoGrant.objects.filter(
            cameo=cameo, grantee=grantee, status__in=[GrantStatus.PENDING, GrantStatus.ACCEPTED]
        ).first()
        if grant is not None and grant.status == GrantStatus.ACCEPTED:
            return grant
        if grant is None:
            grant = CameoGrant(cameo=cameo, grantee=grantee)
        grant.status = GrantStatus.ACCEPTED
        grant.decided_at = timezone.now()
        grant.save()
        _grant_record(cameo, grant, actor=actor_of(actor), action="access_granted")
        _notify_granted(cameo, grant)
    return grant


def grant_decide(*, grant: CameoGrant, actor: User, accept: bool) -> CameoGrant:
    with transaction.atomic():
        cameo = _lock(grant.cameo)
        _require_changeable(cameo)
        grant = CameoGrant.objects.select_for_update().get(pk=grant.pk)
        if grant.status != GrantStatus.PENDING:
            raise Conflict(f"The request is already {grant.status}.", code="grant_not_pending")
        if accept and is_blocked_either_way(cameo.owner, grant.grantee):
            raise Conflict("You cannot grant access to this person.", code="grant_blocked")
        grant.status = GrantStatus.ACCEPTED if accept else GrantStatus.DECLINED
        grant.decided_at = timezone.now()
        grant.save(update_fields=["status", "decided_at"])
        action = "access_approved" if accept else "access_declined"
        _grant_record(cameo, grant, actor=actor_of(actor), action=action)
        if accept:
            _notify_granted(cameo, grant)
    return grant


def grant_revoke(*, grant: CameoGrant, actor: User, policy: str | None = None) -> CameoGrant:
    """Withdraws one person's access: their in-flight jobs stop, and the owner's policy is
    applied to their existing clips with the cameo."""
    policy = _policy(policy, grant.cameo)
    with transaction.atomic():
        cameo = _lock(grant.cameo)
        grant = CameoGrant.objects.select_for_update().get(pk=grant.pk)
        if grant.status not in (GrantStatus.PENDING, GrantStatus.ACCEPTED):
            return grant
        grant.status = GrantStatus.REVOKED
        grant.revoked_at = timezone.now()
        grant.save(update_fields=["status", "revoked_at"])
        _grant_record(cameo, grant, actor=actor_of(actor), action="access_revoked", policy=policy)
    # Only the grantee's standing changed.
    consent_enforce(cameo=cameo, actor=actor_of(actor), policy=policy, user_ids=[grant.grantee_id])
    return grant


def _policy(policy: str | None, cameo: Cameo) -> str:
    policy = policy or cameo.revocation_policy
    if policy not in RevocationPolicy.values:
        raise InvalidRequest(
            "policy must be keep_published or take_down.", code="invalid_policy", param="policy"
        )
    return policy


# --- Revocation and deletion -----------------------------------------------------------------


def cameo_revoke(*, cameo: Cameo, actor: User, policy: str | None = None) -> Cameo:
    """Withdraws the cameo from everyone, its owner included: in-flight jobs stop and the
    policy is applied to every existing clip with it."""
    policy = _policy(policy, cameo)
    with transaction.atomic():
        cameo = _lock(cameo)
        if cameo.status in (CameoStatus.REVOKED, CameoStatus.DELETED):
            return cameo
        cameo.status = CameoStatus.REVOKED
        cameo.revoked_at = timezone.now()
        cameo.save(update_fields=["status", "revoked_at"])
        ledger.append(cameo=cameo, actor=actor_of(actor), action="revoked", data={"policy": policy})
    consent_enforce(cameo=cameo, actor=actor_of(actor), policy=policy)
    return cameo


def cameo_delete(*, cameo: Cameo, actor: User, policy: str | None = None) -> Cameo:
    """Revokes the cameo and purges its reference media. The row and its ledger stay: the
    record of consent outlives the likeness."""
    policy = _policy(policy, cameo)
    with transaction.atomic():
        cameo = _lock(cameo)
        if cameo.status == CameoStatus.DELETED:
            return cameo
        now = timezone.now()
        cameo.status = CameoStatus.DELETED
        cameo.revoked_at = cameo.revoked_at or now
        cameo.deleted_at = now
        cameo.reference_image = ""
        cameo.reference_frames = []
        cameo.voice_sample = ""
        cameo.source_media = ""
        cameo.save()
        ledger.append(cameo=cameo, actor=actor_of(actor), action="deleted", data={"policy": policy})
        CameoGrant.objects.filter(
            cameo=cameo, status__in=[GrantStatus.PENDING, GrantStatus.ACCEPTED]
        ).update(status=GrantStatus.REVOKED, revoked_at=now)
        transaction.on_commit(lambda: media.purge(cameo))
    consent_enforce(cameo=cameo, actor=actor_of(actor), policy=policy)
    return cameo


def consent_enforce(*, cameo: Cameo, actor: str, policy: str, user_ids=None) -> dict:
    """After a consent change has committed: stops every in-flight job whose user may no
    longer use the cameo, then applies ``policy`` to their existing clips. Returns what it
    did: ``{"stopped": [...job ids], "taken_down": [...clip ids]}``."""
    from generation.models import JobStatus
    from generation.services import job_stop

    cameo = Cameo.objects.select_related("owner").get(pk=cameo.pk)
    stopped, to_take_down = [], []
    appearances = Appearance.objects.filter(cameo=cameo).select_related("job", "job__clip", "user")
    if user_ids is not None:
        appearances = appearances.filter(user_id__in=user_ids)
    allowed: dict = {}
    for appearance in appearances.order_by("id"):
        user_pk = appearance.user_id
        if user_pk not in allowed:
            allowed[user_pk] = permissions.can_use(cameo, appearance.user)
        if allowed[user_pk] and appearance.removed_at is None:
            continue
        job = appearance.job
        if not job.is_terminal:
            # Safety: a job whose consent is gone must never yield a clip.
            job_stop(
                job=job,
                actor=actor,
                code=CONSENT_WITHDRAWN,
                reason="The cameo's owner withdrew consent for this video.",
            )
            stopped.append(job.public_id)
        elif job.status == JobStatus.COMPLETED:
            clip = getattr(job, "clip", None)
            if clip is None or clip.removed_at is not None:
                continue
            if policy == RevocationPolicy.TAKE_DOWN or clip.published_at is None:
                to_take_down.append(clip)
    taken = _take_down(to_take_down, cameo=cameo, actor=actor) if to_take_down else []
    return {"stopped": stopped, "taken_down": [str(c.pk) for c in taken]}


def _take_down(clips, *, cameo: Cameo, actor: str) -> list:
    from remix.services import takedown_cameo

    # Safety: the lineage app follows remixes, extensions and edits that still show the cameo.
    reason = "The cameo's owner withdrew consent."
    return list(takedown_cameo(clips=clips, cameo_id=cameo.public_id, actor=actor, reason=reason))


# --- Appearances -----------------------------------------------------------------------------


def appearance_remove(*, appearance: Appearance, actor: User) -> Appearance:
    """The owner takes their cameo out of a clip or job: the clip is removed everywhere, or
    the job stopped. Recorded in the ledger."""
    from generation.services import clip_remove, job_stop

    with transaction.atomic():
        cameo = _lock(appearance.cameo)
        appearance = (
            Appearance.objects.select_for_update().select_related("job").get(pk=appearance.pk)
        )
        if appearance.removed_at is not None:
            return appearance
        appearance.removed_at = timezone.now()
        appearance.save(update_fields=["removed_at"])
        ledger.append(
            cameo=cameo,
            actor=actor_of(actor),
            action="appearance_removed",
            data={"video": appearance.job.public_id, "user": f"user:{appearance.user_id}"},
        )
    job = appearance.job
    reason = "The cameo's owner removed their cameo from this video."
    if not job.is_terminal:
        job_stop(job=job, actor=actor_of(actor), code=CONSENT_WITHDRAWN, reason=reason)
    clip = getattr(job, "clip", None)
    if clip is not None:
        clip_remove(clip=clip, actor=actor_of(actor), reason=reason, code="cameo_owner_removed")
    return appearance


def use_record(*, cameo: Cameo, job, via: str) -> tuple[Appearance, object]:
    """Inside the consent gate's transaction: the ledger's use entry, the appearance, and the
    owner's notification."""
    entry = ledger.append(
        cameo=cameo,
        actor=f"user:{job.user_id}",
        action="used",
        data={"video": job.public_id, "kind": job.kind, "via": via},
    )
    # The job row is inserted by the same transaction after the gates run; the foreign key is
    # checked at commit (PostgreSQL defers Django's constraints), when it exists.
    appearance = Appearance.objects.create(
        cameo=cameo, job_id=job.pk, user_id=job.user_id, via=via, ledger_entry=entry.entry_hash
    )
    if cameo.owner_id != job.user_id:
        notification_create(
            user=cameo.owner,
            kind="cameo_used",
            actor=job.user,
            data={"cameo_id": cameo.public_id, "handle": cameo.handle, "video_id": job.public_id},
        )
    return appearance, entry
