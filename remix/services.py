"""Writes for remix: the remix rules, recording lineage, remix velocity, and takedowns that
follow the graph."""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.selectors import is_blocked_either_way
from accounts.services import notification_create
from generation.gates import GateRefused
from generation.models import TERMINAL, Clip, GenerationJob, JobKind, public_id
from generation.selectors import clip_visible_to
from generation.services import clip_remove, job_stop
from remix import selectors
from remix.models import ANCESTRY_SPAN, EdgeKind, LineageNode
from remix.signals import descendants_need_review

EDGE_KIND_BY_JOB = {
    JobKind.REMIX: EdgeKind.REMIX,
    JobKind.EXTEND: EdgeKind.EXTENSION,
    JobKind.EDIT: EdgeKind.EDIT,
    JobKind.STITCH: EdgeKind.STITCH,
}


# --- Rules --------------------------------------------------------------------------------


def remix_check_allowed(*, user, parent_job: GenerationJob, clip: Clip | None) -> None:
    """Raises GateRefused unless ``user`` may derive a new clip from ``parent_job``'s clip.

    Checked when the job is created and again right before its clip is stored, so a parent
    removed, held, hidden or closed to remixes in between stops the remix. The cameos the
    parent shows are re-checked for ``user`` by the consent gate, not here.
    """
    ref = public_id(parent_job.pk)
    if clip is None or parent_job.deleted_at is not None:
        raise GateRefused(
            "parent_unavailable", f"Video {ref} no longer exists and cannot be remixed.", status=409
        )
    # Safety: a removed or held clip must not live on through derivatives.
    if clip.removed_at is not None:
        raise GateRefused(
            "parent_removed", f"Video {ref} was taken down and cannot be remixed.", status=409
        )
    if clip.held_at is not None:
        raise GateRefused(
            "parent_under_review",
            f"Video {ref} is under review and cannot be remixed until a decision is made.",
            status=409,
        )
    if clip.user_id != user.pk and is_blocked_either_way(user, clip.user):
        raise GateRefused("remix_blocked", f"You cannot remix video {ref}.", status=403)
    if not clip_visible_to(clip=clip, user=user):
        raise GateRefused("parent_not_visible", f"No video found with id {ref!r}.", status=404)
    if clip.user_id != user.pk and not clip.allow_remix:
        raise GateRefused(
            "remix_not_allowed", f"The creator of video {ref} does not allow remixes.", status=403
        )


# --- Recording ------------------------------------------------------------------------------


def _cameo_ids(job: GenerationJob) -> set[str]:
    return {c.get("cameo_id") for c in (job.annotations or {}).get("cameos") or [] if c}


def edge_kind_for(*, job: GenerationJob, parents: list[GenerationJob]) -> str:
    if len(parents) > 1:
        return EdgeKind.STITCH
    kind = EDGE_KIND_BY_JOB.get(job.kind, EdgeKind.REMIX)
    if kind == EdgeKind.REMIX and _cameo_ids(job) and _cameo_ids(job) != _cameo_ids(parents[0]):
        return EdgeKind.CAMEO_SWAP
    return kind


def lineage_node_ensure(*, job_id) -> int:
    """The node id of ``job_id``, creating it as a root (a clip made before lineage was kept,
    or never derived from anything) if it has none. Safe under concurrency: a second writer
    waits for the first and then reads its row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO remix_lineagenode (job_id, depth, children_count, descendants_count,"
            " velocity_score, tree_velocity_score, created_at)"
            " VALUES (%s, 0, 0, 0, 0, 0, %s) ON CONFLICT (job_id) DO NOTHING RETURNING id",
            [job_id, timezone.now()],
        )
        row = cursor.fetchone()
        if row is None:
            cursor.execute("SELECT id FROM remix_lineagenode WHERE job_id = %s", [job_id])
            row = cursor.fetchone()
    return row[0]


# The parents' nodes (by job) and every ancestor of them (hopping past the stored span as the
# selectors do); the roots and the parents are locked, in id order. Every writer below a root
# locks it first, and any two writers that would touch a common ancestor share a root, so they
# queue on it instead of deadlocking, and the counters they bump add up exactly. Also returns
# whether the child is already in the graph, and the ids of all the ancestors.
LOCK_SQL = """
WITH RECURSIVE start AS (
    SELECT id FROM remix_lineagenode WHERE job_id = ANY(%(parent_jobs)s)
), hop(node) AS (
    SELECT id FROM start
    UNION
    SELECT up.id
    FROM hop JOIN remix_ancestorpath p ON p.node_id = hop.node,
        unnest(p.ancestors[array_position(p.distances, %(span)s::smallint):]) AS up(id)
    WHERE array_position(p.distances, %(span)s::smallint) IS NOT NULL
), ids AS (
    SELECT id FROM start
    UNION
    SELECT unnest(p.ancestors) FROM hop JOIN remix_ancestorpath p ON p.node_id = hop.node
)
SELECT n.id, n.job_id, n.depth, n.root_id, n.joined,
    (SELECT id FROM remix_lineagenode WHERE job_id = %(child_job)s),
    (SELECT array_agg(id) FROM ids)
FROM remix_lineagenode n JOIN ids ON n.id = ids.id
WHERE n.root_id IS NULL OR n.id IN (SELECT id FROM start)
ORDER BY n.id
FOR UPDATE OF n
"""

# One statement writes the child, its edges (the first parent's first), its ancestry (each parent
# at 1 and each parent's ancestors one further, shortest route, cut at the span; as rows and as
# its path) and every
# ancestor's counters: each gains a descendant; parents a child and a direct remix in their
# velocity; roots a remix in their tree's velocity. A velocity is a decayed count: aged to now
# (exp(-lambda * elapsed)), plus one; its key, ln(count) + lambda * now, ranks rows by their
# current decayed count without ever rewriting the others. SET expressions read the old row, so
# the key is computed from the same aged count.
WRITE_SQL = """
WITH child AS (
    INSERT INTO remix_lineagenode (job_id, parent_id, root_id, depth, joined, children_count,
        descendants_count, velocity_score, tree_velocity_score, created_at)
    VALUES (%(job)s, %(primary)s, %(root)s, %(depth)s, %(joined)s, 0, 0, 0, 0, %(now)s)
    RETURNING id
), up AS (
    SELECT near.id, min(near.distance) + 1 AS distance
    FROM (
        SELECT unnest(%(parents)s::bigint[]) AS id, 0 AS distance
        UNION ALL
        SELECT unnest(p.ancestors), unnest(p.distances)
        FROM remix_ancestorpath p WHERE p.node_id = ANY(%(parents)s)
    ) AS near
    WHERE near.distance < %(span)s
    GROUP BY near.id
), edges AS (
    INSERT INTO remix_lineageedge (parent_id, child_id, kind, prompt, created_by_id, created_at)
    SELECT p.id, child.id, %(kind)s, %(prompt)s, %(user)s, %(now)s
    FROM child, unnest(%(parents)s::bigint[]) WITH ORDINALITY AS p(id, n)
    ORDER BY p.n
), ancestry AS (
    INSERT INTO remix_ancestry (ancestor_id, distance, descendant_id)
    SELECT up.id, up.distance, child.id FROM child, up
), path AS (
    INSERT INTO remix_ancestorpath (node_id, ancestors, distances)
    SELECT child.id, array_agg(up.id ORDER BY up.distance, up.id),
        array_agg(up.distance ORDER BY up.distance, up.id)::smallint[]
    FROM child, up
    GROUP BY child.id
), counted AS (
    UPDATE remix_lineagenode SET
        descendants_count = descendants_count + 1,
        children_count = children_count + CASE WHEN id = ANY(%(parents)s) THEN 1 ELSE 0 END,
        velocity_score = CASE WHEN id = ANY(%(parents)s) THEN velocity_score * exp(-%(lam)s
            * GREATEST(0, extract(epoch FROM (%(now)s - COALESCE(velocity_at, %(now)s))))) + 1
            ELSE velocity_score END,
        velocity_key = CASE WHEN id = ANY(%(parents)s) THEN ln(velocity_score * exp(-%(lam)s
            * GREATEST(0, extract(epoch FROM (%(now)s - COALESCE(velocity_at, %(now)s))))) + 1)
            + %(lam)s * extract(epoch FROM %(now)s) ELSE velocity_key END,
        velocity_at = CASE WHEN id = ANY(%(parents)s) THEN %(now)s ELSE velocity_at END,
        tree_velocity_score = CASE WHEN root_id IS NULL THEN tree_velocity_score * exp(-%(lam)s
            * GREATEST(0, extract(epoch FROM (%(now)s - COALESCE(tree_velocity_at, %(now)s)))))
            + 1 ELSE tree_velocity_score END,
        tree_velocity_key = CASE WHEN root_id IS NULL THEN ln(tree_velocity_score
            * exp(-%(lam)s * GREATEST(0, extract(epoch FROM
            (%(now)s - COALESCE(tree_velocity_at, %(now)s))))) + 1)
            + %(lam)s * extract(epoch FROM %(now)s) ELSE tree_velocity_key END,
        tree_velocity_at = CASE WHEN root_id IS NULL THEN %(now)s ELSE tree_velocity_at END
    WHERE id = ANY(%(ancestors)s)
)
SELECT id FROM child
"""


def lineage_record(
    *,
    job_id,
    parent_job_ids: list,
    kind: str,
    prompt: str = "",
    created_by_id=None,
    at: dt.datetime | None = None,
) -> int:
    """Adds ``job_id`` to the graph below ``parent_job_ids`` (the first is its primary parent)
    and bumps every ancestor's counts and the velocities, in the caller's transaction. Returns
    the new node's id (the existing one, unchanged, if the job is already in the graph).

    Two statements whatever the depth: lock the roots and parents, then write.
    """
    if not parent_job_ids:
        raise ValueError("a lineage edge needs at least one parent")
    at = at or timezone.now()
    params = {"parent_jobs": list(parent_job_ids), "child_job": job_id, "span": ANCESTRY_SPAN}
    # No savepoint of its own: a failure here fails the caller's transaction, as it should.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(LOCK_SQL, params)
        locked = cursor.fetchall()
        node_of = {row[1]: row[0] for row in locked}
        if locked and locked[0][5] is not None:
            return locked[0][5]
        if set(parent_job_ids) - set(node_of):
            # A parent made before lineage was kept, or never remixed: it becomes a root, in a
            # fixed order so two stitches of the same new clips do not wait on each other.
            existing = LineageNode.objects.filter(job_id=job_id).values_list("id", flat=True)
            if existing:
                return existing[0]
            for missing in sorted(set(parent_job_ids) - set(node_of)):
                lineage_node_ensure(job_id=missing)
            cursor.execute(LOCK_SQL, params)
            locked = cursor.fetchall()
            node_of = {row[1]: row[0] for row in locked}
        rows = {row[0]: row for row in locked}
        parents = list(dict.fromkeys(node_of[jid] for jid in parent_job_ids))
        _, _, primary_depth, primary_root, _, _, ancestors = rows[parents[0]]
        cursor.execute(
            WRITE_SQL,
            {
                "job": job_id,
                "primary": parents[0],
                "root": primary_root or parents[0],
                "depth": primary_depth + 1,
                "joined": len(parents) > 1 or any(rows[p][4] for p in parents),
                "now": at,
                "kind": kind,
                "prompt": prompt,
                "user": created_by_id,
                "parents": parents,
                "ancestors": ancestors,
                "span": ANCESTRY_SPAN,
                "lam": selectors.velocity_lambda(),
            },
        )
        return cursor.fetchone()[0]


def lineage_record_for_clip(*, clip: Clip) -> int | None:
    """Records a newly stored clip's place in the graph and credits its parent's creator.
    Called in the transaction that stores the clip, so the edge exists exactly when the clip
    does: a job refused at completion never appears in the graph or in any count."""
    job = clip.job
    parent_ids = job.parent_ids
    if not parent_ids:
        return None
    found = GenerationJob.objects.select_related("user").in_bulk(parent_ids)
    parents = [found[pk] for pk in parent_ids if pk in found]
    if not parents:
        return None
    kind = edge_kind_for(job=job, parents=parents)
    node = lineage_record(
        job_id=job.pk,
        parent_job_ids=[parent.pk for parent in parents],
        kind=kind,
        prompt=job.prompt,
        created_by_id=job.user_id,
        at=clip.created_at,
    )
    credited = set()
    for parent in parents:
        # Each creator is told once, however many of their clips a stitch joins.
        if parent.user_id == job.user_id or parent.user_id in credited:
            continue
        credited.add(parent.user_id)
        notification_create(
            user=parent.user,
            kind="remix.created",
            data={"video_id": job.public_id, "parent_video_id": parent.public_id, "kind": kind},
            actor=job.user,
        )
    return node


# --- Takedowns ----------------------------------------------------------------------------


def _live_descendant_clips(job_ids: list) -> list[Clip]:
    descendant_jobs = selectors.descendant_job_ids(job_ids)
    return list(
        Clip.objects.select_related("job", "user")
        .filter(job_id__in=descendant_jobs, removed_at__isnull=True, job__deleted_at__isnull=True)
        .order_by("job_id")
    )


def takedown_policy(*, clip: Clip, actor: str, reason: str, code: str = "policy") -> list[Clip]:
    """Removes ``clip`` for a policy reason and queues its live descendants for review (they
    stay up until a reviewer decides: a remix is not guilty of its parent). Jobs still deriving
    from the clip are stopped. Returns the descendants sent for review."""
    with transaction.atomic():
        clip_remove(clip=clip, actor=actor, reason=reason, code=code)
        descendants = _live_descendant_clips([clip.job_id])
        descendants_need_review.send(
            sender=None, clip=clip, descendants=descendants, reason=reason, actor=actor
        )
    _stop_derivations([clip.job_id], actor=actor)
    return descendants


def takedown_cameo(*, clips, cameo_id: str, actor: str, reason: str) -> list[Clip]:
    """Removes ``clips`` (a cameo owner's takedown) and every descendant that still shows the
    cameo ``cameo_id``; descendants that swapped it out stay. Returns the given clips and the
    descendants this call removed."""
    clips = list(clips)
    removed: list[Clip] = []
    with transaction.atomic():
        for clip in clips:
            clip_remove(clip=clip, actor=actor, reason=reason, code="cameo_takedown")
            removed.append(clip)
        job_ids = [clip.job_id for clip in clips]
        given = set(job_ids)
        showing = [
            d
            for d in _live_descendant_clips(job_ids)
            if cameo_id in _cameo_ids(d.job) and d.job_id not in given
        ]
        for descendant in showing:
            # Safety: a derivative must not keep showing a likeness its owner took down.
            if clip_remove(clip=descendant, actor=actor, reason=reason, code="cameo_takedown"):
                removed.append(descendant)
    _stop_derivations(job_ids + [d.job_id for d in showing], actor=actor)
    return removed


def _stop_derivations(parent_job_ids: list, *, actor: str) -> None:
    # A stitch names its other clips in params["parents"] (a jsonb array of public ids).
    refs = [public_id(pk) for pk in parent_job_ids]
    pending = GenerationJob.objects.filter(
        Q(parent_id__in=parent_job_ids) | Q(params__parents__has_any_keys=refs)
    ).exclude(status__in=TERMINAL)
    taken_down = set(parent_job_ids)
    for job in pending:
        cause = next((pk for pk in job.parent_ids if pk in taken_down), job.parent_id)
        job_stop(
            job=job,
            actor=actor,
            code="parent_removed",
            reason=f"Video {public_id(cause)} was taken down.",
        )
