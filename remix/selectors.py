"""Reads of the lineage graph.

Two layers: structural queries on node ids (what the benchmark measures against a recursive
CTE), and the permission-filtered pages built on them, which return only clips the viewer may
see (generation.selectors.clips_visible_q) and skip the others without a trace: a hidden clip
is neither listed nor counted in a page, and cursors step over it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from core.errors import InvalidRequest, NotFound
from core.pagination import decode_cursor, encode_cursor
from generation.models import Clip
from generation.selectors import clip_by_job_ref, clip_visible_to, clips_visible_q
from remix.models import ANCESTRY_SPAN, LineageEdge, LineageNode

# A page scans at most this many batches of hidden rows before answering with what it found
# (a short page with a cursor), so one viewer's page costs a bounded amount of work.
MAX_SCAN_BATCHES = 8

# --- Structure (node ids, no permissions) ---------------------------------------------------

# Ancestors up to ``upto`` generations above a node: the paths of the node and of the ancestors
# exactly a multiple of the span above it. A path is ordered by distance, so those at the span
# are its tail. The arrays are expanded in the select list, which streams them (a FROM-clause
# unnest would collect each into a tuplestore first, several times slower here).
ANCESTORS_CTE = """
WITH RECURSIVE hop(node, base) AS (
    SELECT %(node)s::bigint, 0
    UNION
    SELECT up.id, hop.base + %(span)s
    FROM hop JOIN remix_ancestorpath p ON p.node_id = hop.node,
        unnest(p.ancestors[array_position(p.distances, %(span)s::smallint):]) AS up(id)
    WHERE array_position(p.distances, %(span)s::smallint) IS NOT NULL
        AND hop.base + %(span)s < %(upto)s
), reached AS (
    SELECT unnest(p.ancestors) AS id, hop.base + unnest(p.distances) AS distance
    FROM hop JOIN remix_ancestorpath p ON p.node_id = hop.node
)
"""
# A node with a single line of parents reaches each ancestor once; below a stitch two routes may
# reach one, and the shorter counts.
ANCESTORS_SQL = ANCESTORS_CTE + "SELECT id, distance FROM reached WHERE distance <= %(upto)s"  # noqa: S608
ANCESTORS_JOINED_SQL = (
    ANCESTORS_CTE + "SELECT id, min(distance) FROM reached WHERE distance <= %(upto)s GROUP BY id"  # noqa: S608
)

UNBOUNDED = 2**31 - 1


def ancestors_with_distance(node_id: int, *, joined: bool, upto: int = UNBOUNDED) -> dict[int, int]:
    """{ancestor id: generations above ``node_id``} for the ancestors at most ``upto`` above,
    all the way to the roots by default; ``joined`` is the node's own flag. One query,
    d / ANCESTRY_SPAN primary-key lookups deep."""
    with connection.cursor() as cursor:
        cursor.execute(
            ANCESTORS_JOINED_SQL if joined else ANCESTORS_SQL,
            {"node": node_id, "span": ANCESTRY_SPAN, "upto": upto},
        )
        return dict(cursor.fetchall())


BAND_ZERO_SQL = """
SELECT a.distance, a.descendant_id, n.job_id
FROM remix_ancestry a JOIN remix_lineagenode n ON n.id = a.descendant_id
WHERE a.ancestor_id = %(node)s AND (a.distance, a.descendant_id) > (%(d)s, %(i)s)
ORDER BY a.distance, a.descendant_id
LIMIT %(limit)s
"""

# Descendants between base+1 and base+SPAN generations below: the stored ancestry of the
# descendants exactly ``base`` below (found by hopping SPAN at a time).
BAND_SQL = """
WITH RECURSIVE hop(node, base) AS (
    SELECT %(node)s::bigint, 0
    UNION
    SELECT a.descendant_id, hop.base + %(span)s
    FROM hop JOIN remix_ancestry a ON a.ancestor_id = hop.node AND a.distance = %(span)s
    WHERE hop.base < %(base)s
), band AS (
    SELECT a.descendant_id AS id, min(a.distance) AS distance
    FROM hop JOIN remix_ancestry a ON a.ancestor_id = hop.node
    WHERE hop.base = %(base)s
    GROUP BY a.descendant_id
)
SELECT band.distance + %(base)s, band.id, n.job_id, n.joined
FROM band JOIN remix_lineagenode n ON n.id = band.id
WHERE (band.distance, band.id) > (%(d)s, %(i)s)
ORDER BY band.distance, band.id
LIMIT %(limit)s
"""


def descendant_rows(node_id: int, *, after: tuple[int, int] = (0, 0), limit: int = 50) -> list:
    """The next ``limit`` descendants of ``node_id`` breadth first — ordered by (generations
    below, node id) — strictly after ``after``: ``[(distance, node id, job id), ...]``.

    Within ANCESTRY_SPAN levels this is one range scan of the ancestry index; deeper levels are
    read a span at a time from the descendants exactly a multiple of the span below.
    """
    rows: list = []
    distance, node = after
    band = max(0, (distance - 1) // ANCESTRY_SPAN)
    local = (distance - band * ANCESTRY_SPAN, node) if distance else (0, 0)
    with connection.cursor() as cursor:
        while len(rows) < limit:
            wanted = limit - len(rows)
            params = {"node": node_id, "d": local[0], "i": local[1], "limit": wanted}
            if band == 0:
                cursor.execute(BAND_ZERO_SQL, params)
                got = cursor.fetchall()
                rows.extend(got)
            else:
                base = band * ANCESTRY_SPAN
                cursor.execute(BAND_SQL, params | {"span": ANCESTRY_SPAN, "base": base})
                got = cursor.fetchall()
                rows.extend(
                    (d, i, job)
                    for d, i, job, joined in got
                    if not (joined and _nearer(node_id, below=i, than=d))
                )
            if len(got) == wanted:
                # Full, unless a row was dropped: then this band goes on after the last one.
                local = (got[-1][0] - band * ANCESTRY_SPAN, got[-1][1])
                continue
            # A band that is empty from its start means there is nothing deeper either: every
            # deeper descendant has an ancestor in it.
            if not got and local == (0, 0):
                break
            band, local = band + 1, (0, 0)
    return rows


def _nearer(node_id: int, *, below: int, than: int) -> bool:
    """Whether ``below`` (a clip with several parents somewhere above it) is fewer than
    ``than`` generations below ``node_id`` by another route, so that it was listed in an
    earlier span already. Only a stitch can be reached by routes of different lengths."""
    return node_id in ancestors_with_distance(below, joined=True, upto=than - 1)


ALL_DESCENDANTS_SQL = """
WITH RECURSIVE hop(node) AS (
    SELECT unnest(%(start)s::bigint[])
    UNION
    SELECT a.descendant_id
    FROM hop JOIN remix_ancestry a ON a.ancestor_id = hop.node AND a.distance = %(span)s
)
SELECT DISTINCT n.job_id
FROM hop
JOIN remix_ancestry a ON a.ancestor_id = hop.node
JOIN remix_lineagenode n ON n.id = a.descendant_id
"""


def descendant_job_ids(job_ids: list) -> list:
    """The jobs of every descendant of these jobs' clips, in no particular order."""
    starts = list(LineageNode.objects.filter(job_id__in=job_ids).values_list("id", flat=True))
    if not starts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(ALL_DESCENDANTS_SQL, {"start": starts, "span": ANCESTRY_SPAN})
        return [row[0] for row in cursor.fetchall()]


# --- Velocity -----------------------------------------------------------------------------


def velocity_lambda() -> float:
    """The decay rate per second: a remix counts half after REMIX_VELOCITY_HALF_LIFE_HOURS."""
    return math.log(2) / (settings.REMIX_VELOCITY_HALF_LIFE_HOURS * 3600)


def _per_hour(score: float, at, now) -> float:
    if not score or at is None:
        return 0.0
    lam = velocity_lambda()
    decayed = score * math.exp(-lam * max(0.0, (now - at).total_seconds()))
    # The exponentially weighted rate of a stream of events is lambda times its decayed count.
    return decayed * lam * 3600


def velocities(*, job_ids: list, now=None) -> dict:
    """``{job id: {"remixes_per_hour": direct, "tree_remixes_per_hour": whole tree}}`` for
    the feed's trending source; the tree figure is that of the clip's original. Two queries at most,
    nothing scanned: each figure is a stored decayed count aged to ``now``."""
    now = now or timezone.now()
    fields = ("id", "job_id", "root_id", "velocity_score", "velocity_at")
    tree_fields = ("id", "tree_velocity_score", "tree_velocity_at")
    nodes = list(LineageNode.objects.filter(job_id__in=job_ids).values(*fields, *tree_fields[1:]))
    trees = {n["id"]: n for n in nodes if n["root_id"] is None}
    missing = {n["root_id"] for n in nodes if n["root_id"] is not None} - set(trees)
    if missing:
        roots = LineageNode.objects.filter(id__in=missing).values(*tree_fields)
        trees |= {r["id"]: r for r in roots}
    result = {job_id: {"remixes_per_hour": 0.0, "tree_remixes_per_hour": 0.0} for job_id in job_ids}
    for n in nodes:
        tree = trees[n["root_id"] or n["id"]]
        result[n["job_id"]] = {
            "remixes_per_hour": _per_hour(n["velocity_score"], n["velocity_at"], now),
            "tree_remixes_per_hour": _per_hour(
                tree["tree_velocity_score"], tree["tree_velocity_at"], now
            ),
        }
    return result


def trending_originals(*, user, limit: int = 20) -> list[tuple[Clip, float]]:
    """Originals whose remix trees grow fastest now, visible to ``user``, fastest first:
    ``[(clip, remixes per hour), ...]``. Read down the index of the stored key, which ranks
    originals by their current decayed count without touching any other row; hidden ones are
    skipped a batch at a time, never by scanning the clips."""
    now = timezone.now()
    found: list[tuple[Clip, float]] = []
    after = None
    batch = limit * 2
    for _ in range(MAX_SCAN_BATCHES):
        rows = LineageNode.objects.filter(root__isnull=True, tree_velocity_key__isnull=False)
        if after is not None:
            rows = rows.filter(
                Q(tree_velocity_key__lt=after[0]) | Q(tree_velocity_key=after[0], id__gt=after[1])
            )
        rows = list(
            rows.order_by("-tree_velocity_key", "id").values(
                "id", "job_id", "tree_velocity_key", "tree_velocity_score", "tree_velocity_at"
            )[:batch]
        )
        visible = _visible_clips([n["job_id"] for n in rows], user)
        for n in rows:
            if n["job_id"] in visible:
                rate = _per_hour(n["tree_velocity_score"], n["tree_velocity_at"], now)
                found.append((visible[n["job_id"]], rate))
                if len(found) == limit:
                    return found
        if len(rows) < batch:
            break
        after = (rows[-1]["tree_velocity_key"], rows[-1]["id"])
    return found


# --- Permission-filtered views ------------------------------------------------------------


@dataclass
class LineageItem:
    clip: Clip
    distance: int | None
    node: LineageNode | None
    kind: str | None


def clip_get_for_lineage(*, video_id: str, user) -> Clip:
    """A clip ``user`` may see, by its video id; anything else is the same 404 as a missing
    id."""
    clip = clip_by_job_ref(video_id)
    if clip is None or not clip_visible_to(clip=clip, user=user):
        raise NotFound(
            f"No video found with id {video_id!r}.", code="video_not_found", param="video_id"
        )
    return clip


def node_of(clip: Clip) -> LineageNode | None:
    return LineageNode.objects.filter(job_id=clip.job_id).first()


def _visible_clips(job_ids: list, user) -> dict:
    return (
        Clip.objects.filter(clips_visible_q(user))
        .select_related("user")
        .in_bulk(job_ids, field_name="job_id")
    )


DISTANCE_KEY = (2**31, 2**63)  # cursor bounds of (generations, node id)
NODE_KEY = (2**63,)


def _decode(cursor: str | None, bounds: tuple[int, ...]) -> tuple[int, ...] | None:
    if not cursor:
        return None
    values = decode_cursor(cursor, len(bounds))
    invalid = InvalidRequest("The cursor is not valid.", code="invalid_cursor", param="cursor")
    try:
        key = tuple(int(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise invalid from exc
    if any(not 0 <= v < bound for v, bound in zip(key, bounds, strict=True)):
        raise invalid
    return key


def _visible_page(fetch, *, user, start: tuple, limit: int):
    """Pages through ``fetch(after, n) -> [(key, job id), ...]`` (ordered by key), keeping the
    clips ``user`` may see. Returns (clips with their keys, next cursor or None)."""
    page: list = []
    key = start
    batch = limit + 1
    for _ in range(MAX_SCAN_BATCHES):
        rows = fetch(key, batch)
        visible = _visible_clips([job_id for _, job_id in rows], user)
        for row_key, job_id in rows:
            key = row_key
            if job_id in visible:
                page.append((row_key, visible[job_id]))
                if len(page) > limit:
                    return page[:limit], encode_cursor(list(page[limit - 1][0]))
        if len(rows) < batch:
            return page, None
        batch = min(batch * 4, 1000)
    # Many hidden rows in a row: answer what was found and let the cursor go on from there.
    return page, encode_cursor(list(key))


def _items(page, *, distance_at: int | None) -> list[LineageItem]:
    """Attaches each clip's node and the kind of its first edge: two queries for a page."""
    job_ids = [clip.job_id for _, clip in page]
    nodes = LineageNode.objects.in_bulk(job_ids, field_name="job_id")
    kinds = dict(
        LineageEdge.objects.filter(child__job_id__in=job_ids)
        .order_by("child_id", "id")
        .distinct("child_id")
        .values_list("child__job_id", "kind")
    )
    return [
        LineageItem(
            clip=clip,
            distance=key[distance_at] if distance_at is not None else None,
            node=nodes.get(clip.job_id),
            kind=kinds.get(clip.job_id),
        )
        for key, clip in page
    ]


def descendants_page(*, clip: Clip, user, cursor: str | None, limit: int):
    node = node_of(clip)
    start = _decode(cursor, DISTANCE_KEY) or (0, 0)
    if node is None:
        return [], None

    def fetch(after, n):
        return [((d, i), job) for d, i, job in descendant_rows(node.pk, after=after, limit=n)]

    page, next_cursor = _visible_page(fetch, user=user, start=start, limit=limit)
    return _items(page, distance_at=0), next_cursor


def ancestors_page(*, clip: Clip, user, cursor: str | None, limit: int):
    """Nearest first, up to the root(s)."""
    node = node_of(clip)
    start = _decode(cursor, DISTANCE_KEY) or (0, 0)
    if node is None or node.parent_id is None:
        return [], None

    def fetch(after, n):
        # Every level up to the farthest ancestor holds one at least, so the next n lie within
        # n levels of the cursor.
        found = ancestors_with_distance(
            node.pk, joined=node.joined, upto=min(after[0] + n, UNBOUNDED)
        )
        wanted = sorted((d, i) for i, d in found.items() if (d, i) > after)[:n]
        jobs = dict(
            LineageNode.objects.filter(id__in=[i for _, i in wanted]).values_list("id", "job_id")
        )
        return [(key, jobs[key[1]]) for key in wanted]

    page, next_cursor = _visible_page(fetch, user=user, start=start, limit=limit)
    return _items(page, distance_at=0), next_cursor


def children_page(*, clip: Clip, user, cursor: str | None, limit: int):
    node = node_of(clip)
    start = _decode(cursor, NODE_KEY) or (0,)
    if node is None:
        return [], None

    def fetch(after, n):
        rows = (
            LineageEdge.objects.filter(parent_id=node.pk, child_id__gt=after[0])
            .order_by("child_id")
            .values_list("child_id", "child__job_id")[:n]
        )
        return [((child,), job) for child, job in rows]

    page, next_cursor = _visible_page(fetch, user=user, start=start, limit=limit)
    return _items(page, distance_at=None), next_cursor


def siblings_page(*, clip: Clip, user, cursor: str | None, limit: int):
    """Other clips made from the same parent(s)."""
    node = node_of(clip)
    start = _decode(cursor, NODE_KEY) or (0,)
    if node is None or node.parent_id is None:
        return [], None
    parents = LineageEdge.objects.filter(child_id=node.pk).values("parent_id")

    def fetch(after, n):
        rows = (
            LineageEdge.objects.filter(parent_id__in=parents, child_id__gt=after[0])
            .exclude(child_id=node.pk)
            .order_by("child_id")
            .distinct("child_id")
            .values_list("child_id", "child__job_id")[:n]
        )
        return [((child,), job) for child, job in rows]

    page, next_cursor = _visible_page(fetch, user=user, start=start, limit=limit)
    return _items(page, distance_at=None), next_cursor


@dataclass
class LineageSummary:
    clip: Clip
    node: LineageNode | None
    parents: list[LineageItem]
    original: LineageItem | None
    velocity: dict


def lineage_summary(*, clip: Clip, user) -> LineageSummary:
    """A clip's place in the graph: its visible parents, the original of its chain (when
    visible), its depth, exact remix counts and velocity."""
    node = node_of(clip)
    parents: list[LineageItem] = []
    original = None
    if node is not None and node.parent_id is not None:
        parent_jobs = list(
            LineageEdge.objects.filter(child_id=node.pk)
            .order_by("id")
            .values_list("parent__job_id", flat=True)
        )
        root_job = LineageNode.objects.filter(pk=node.root_id).values_list("job_id", flat=True)
        visible = _visible_clips([*parent_jobs, *root_job], user)
        shown = [((0,), visible[j]) for j in parent_jobs if j in visible]
        parents = _items(shown, distance_at=None)
        root = next(iter(root_job), None)
        if root in visible:
            (original,) = _items([((0,), visible[root])], distance_at=None)
    elif node is None or node.parent_id is None:
        (original,) = _items([((0,), clip)], distance_at=None)
    return LineageSummary(
        clip=clip,
        node=node,
        parents=parents,
        original=original,
        velocity=velocities(job_ids=[clip.job_id])[clip.job_id],
    )


def lineage_credits(*, job_ids: list, user) -> dict:
    """``{job id: {"parent": Clip | None, "original": Clip | None}}`` for a page of posts:
    whom to credit, among the clips ``user`` may see. Two queries whatever the page size."""
    nodes = list(
        LineageNode.objects.filter(job_id__in=job_ids, parent__isnull=False).values(
            "job_id", "parent__job_id", "root__job_id"
        )
    )
    wanted = {n["parent__job_id"] for n in nodes} | {n["root__job_id"] for n in nodes}
    visible = _visible_clips(list(wanted), user)
    credits = {job_id: {"parent": None, "original": None} for job_id in job_ids}
    for n in nodes:
        credits[n["job_id"]] = {
            "parent": visible.get(n["parent__job_id"]),
            "original": visible.get(n["root__job_id"]),
        }
    return credits
