"""Reads for generation, permission-checked."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from core.errors import NotFound
from generation.models import Clip, ClipAudience, GenerationJob, parse_public_id


def jobs_for_owner(*, user) -> QuerySet:
    # No join to the parent: lists show only its id, and its plan JSON is large.
    return GenerationJob.objects.filter(user=user, deleted_at__isnull=True).select_related("clip")


def job_get_for_owner(*, job_id: str, user) -> GenerationJob:
    """The caller's own job. Someone else's id answers exactly like a missing one."""
    # Safety: ownership is part of the lookup, so no code path can skip it.
    pk = parse_public_id(job_id)
    job = jobs_for_owner(user=user).filter(pk=pk).first() if pk else None
    if job is None:
        raise NotFound(
            f"No video found with id {job_id!r}.", code="video_not_found", param="video_id"
        )
    return job


def clip_get_for_viewer(*, job_id: str, user) -> Clip:
    """The clip of a completed job, for someone allowed to see its (draft) media. Anyone else,
    and any unfinished or removed clip, gets the same 404 as a missing id."""
    pk = parse_public_id(job_id)
    clip = (
        Clip.objects.select_related("job")
        .filter(job_id=pk, job__deleted_at__isnull=True, removed_at__isnull=True)
        .first()
        if pk
        else None
    )
    # Safety: draft media is private; the viewer check is the only way to it.
    if clip is None or not clip_viewers_ok(clip=clip, user=user):
        raise NotFound(
            f"No video found with id {job_id!r}.", code="video_not_found", param="video_id"
        )
    return clip


def clip_viewers_ok(*, clip: Clip, user) -> bool:
    """Who may fetch a draft's media: its creator (the cameo app widens this to the owners of
    cameos in it, through the same function)."""
    return user is not None and user.is_authenticated and clip.user_id == user.pk


def clip_by_job_ref(ref: str | None) -> Clip | None:
    """The clip of the job named ``ref`` (``video_<hex>`` or a UUID), with its job and creator;
    None for an unknown or malformed reference. Visibility is the caller's to check."""
    pk = parse_public_id(ref) if isinstance(ref, str) else None
    return Clip.objects.select_related("job", "user").filter(job_id=pk).first() if pk else None


def clip_visible_to(*, clip: Clip, user) -> bool:
    """Whether ``user`` may see ``clip`` (its post, its place in a lineage view, its media).

    - A removed clip, or one whose job was deleted, is seen by nobody.
    - Its creator always sees it (a held clip included); staff see it unless removed.
    - Anybody else only when it is published to them: ``public``, or ``followers`` and they
      follow the creator; never when either has blocked the other, when it is held for review,
      or when it is age-restricted and they are a teen.
    """
    from accounts.models import Follow
    from accounts.selectors import is_blocked_either_way

    if clip.removed_at is not None or clip.job.deleted_at is not None:
        return False
    authenticated = user is not None and user.is_authenticated
    if authenticated and clip.user_id == user.pk:
        return True
    if authenticated and user.is_staff:
        return True
    if clip.held_at is not None or clip.audience == ClipAudience.ONLY_ME:
        return False
    if clip.age_restricted and (not authenticated or user.is_teen):
        return False
    if authenticated and is_blocked_either_way(user, clip.user):
        return False
    if clip.audience == ClipAudience.PUBLIC:
        return True
    return (
        authenticated
        and Follow.objects.filter(follower_id=user.pk, followee_id=clip.user_id).exists()
    )


def clips_visible_q(user) -> Q:
    """The same rule as :func:`clip_visible_to` as a filter on ``Clip`` rows, for lists."""
    from accounts.models import Follow
    from accounts.selectors import blocked_either_way_q

    live = Q(removed_at__isnull=True, job__deleted_at__isnull=True)
    authenticated = user is not None and user.is_authenticated
    if not authenticated:
        return live & Q(audience=ClipAudience.PUBLIC, held_at__isnull=True, age_restricted=False)
    if user.is_staff:
        return live
    shown = Q(audience=ClipAudience.PUBLIC) | Q(
        audience=ClipAudience.FOLLOWERS,
        user_id__in=Follow.objects.filter(follower_id=user.pk).values("followee_id"),
    )
    others = shown & Q(held_at__isnull=True) & ~blocked_either_way_q(user, "user_id")
    if user.is_teen:
        others &= Q(age_restricted=False)
    return live & (Q(user_id=user.pk) | others)


def clips_matching(*, hashes, limit: int = 20) -> list[dict]:
    """Clips whose fingerprints are within PDQ's match distance of ``hashes`` (per-second
    hashes of a video), best first: how many of the query's seconds matched, and how closely.

    The GIN index finds candidates without a scan; Postgres keeps those whose exact distance
    is within PDQ's threshold (31). By the pigeonhole principle a stored hash within 15 bits of
    a query hash equals it in at least one of the 16 bands, and one within 31 bits differs by at
    most one bit in some band: ``FINGERPRINT_PROBE_RADIUS`` 0 probes the band values (every
    match within 15 bits, most beyond), 1 also their one-bit neighbours (every match within
    31, at 17x the candidates). On re-encoded, resized, trimmed and resampled copies both found
    the same clips (bench.provenance), so 0 is the default.
    """
    from django.conf import settings
    from django.db import connection, transaction

    from generation.provenance.fingerprint import MATCH_DISTANCE, MIN_QUALITY, probe_codes

    usable = [h for h in hashes if h.quality >= MIN_QUALITY]
    if not usable:
        return []
    parts, params = [], []
    for h in usable:
        parts.append(
            "SELECT clip_id, %s AS second, bit_count(hash_bits # %s::bit(256)) AS d "
            "FROM generation_clipfingerprint WHERE bands && %s::int[]"
        )
        codes = probe_codes(h.hash, radius=settings.FINGERPRINT_PROBE_RADIUS)
        params += [h.second, "".join(f"{byte:08b}" for byte in h.hash), codes]
    union = " UNION ALL ".join(parts)  # constant fragments: every value is a parameter
    sql = (
        f"SELECT clip_id, second, min(d) FROM ({union}) AS c "  # noqa: S608
        "WHERE d <= %s GROUP BY clip_id, second"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Postgres cannot estimate an overlap with hundreds of probe codes and guesses that
        # most rows match, so it would scan the table (~1.5 s at 20,000 clips, and linear);
        # through the GIN index the same lookup takes about a millisecond.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(sql, [*params, MATCH_DISTANCE])
        rows = cursor.fetchall()
    best: dict = {}
    for clip_id, second, d in rows:
        best.setdefault(clip_id, {})[second] = d
    ranked = sorted(
        best.items(), key=lambda item: (-len(item[1]), sum(item[1].values()) / len(item[1]))
    )
    return [
        {
            "clip_id": clip_id,
            "matched_seconds": len(seconds),
            "query_seconds": len(usable),
            "mean_distance": round(sum(seconds.values()) / len(seconds), 1),
        }
        for clip_id, seconds in ranked[:limit]
    ]


def jobs_stalled(*, waited) -> list[GenerationJob]:
    """Unfinished jobs that need their task sent again: a stage whose lease lapsed (its worker
    died), or a hand-off waiting longer than ``waited`` (its message may be lost)."""
    from django.db.models import Q
    from django.utils import timezone

    from generation.models import TERMINAL, JobStage

    now = timezone.now()
    lapsed = Q(stage__in=[JobStage.RENDERING, JobStage.POSTPROCESSING], lease_expires_at__lt=now)
    waiting = Q(stage__in=[JobStage.QUEUED, JobStage.RENDERED], created_at__lt=now - waited)
    return list(
        GenerationJob.objects.filter(deleted_at__isnull=True)
        .exclude(status__in=TERMINAL)
        .filter(lapsed | waiting)
        .only("id", "stage", "priority")
    )
