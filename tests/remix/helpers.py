"""Builders for the remix tests: completed jobs with their clips, written the way the worker
writes them (so the lineage receiver runs exactly as in production)."""

from __future__ import annotations

from django.db import connection

from generation.models import Clip, ClipAudience, JobKind
from remix.models import LineageNode
from tests.factories import completed_clip


def make_clip(
    owner,
    *,
    parent: Clip | None = None,
    kind: str = JobKind.REMIX,
    audience: str = ClipAudience.PUBLIC,
    prompt: str = "a red ball bouncing",
    cameos: list[str] | None = None,
    **fields,
) -> Clip:
    annotations = {"cameos": [{"cameo_id": c} for c in cameos]} if cameos else {}
    return completed_clip(
        owner,
        parent=parent,
        kind=kind,
        audience=audience,
        prompt=prompt,
        annotations=annotations,
        **fields,
    )


def node(clip: Clip) -> LineageNode:
    return LineageNode.objects.get(job_id=clip.job_id)


def cte_descendants(node_id: int) -> list[tuple[int, int]]:
    """(distance, node id) of every descendant, breadth first, by a plain recursive CTE over the
    edges: the reference the lineage queries must agree with."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE down(id, distance) AS (
                SELECT %s::bigint, 0
                UNION
                SELECT e.child_id, down.distance + 1
                FROM down JOIN remix_lineageedge e ON e.parent_id = down.id
            )
            SELECT min(distance), id FROM down WHERE id <> %s GROUP BY id
            ORDER BY 1, 2
            """,
            [node_id, node_id],
        )
        return [tuple(row) for row in cursor.fetchall()]


def cte_ancestors(node_id: int) -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE up(id, distance) AS (
                SELECT %s::bigint, 0
                UNION
                SELECT e.parent_id, up.distance + 1
                FROM up JOIN remix_lineageedge e ON e.child_id = up.id
            )
            SELECT id, min(distance) FROM up WHERE id <> %s GROUP BY id
            """,
            [node_id, node_id],
        )
        return dict(cursor.fetchall())
