"""The lineage graph: which clip came from which.

A node is a generation job whose clip exists (or existed): the graph is keyed on jobs, not clips,
because the lineage edge is decided when the job is created (before any clip exists), and because
a job row outlives its clip (deleting a video deletes the clip row but only soft-deletes the job),
so a deleted clip leaves a hole that descendants still hang from instead of orphaning them.

Storage is a *depth-limited closure*: each node's ancestors at most ``ANCESTRY_SPAN`` generations
up, kept twice: as ``Ancestry`` rows keyed for reading down, and as one ``AncestorPath`` row of
arrays for reading up. Anything deeper is reached by hopping ``ANCESTRY_SPAN`` levels at a time
through the ancestors at exactly that distance. So:

- a node costs at most ``ANCESTRY_SPAN`` rows per parent line, whatever the depth (a full closure
  of a 5,000-deep chain is 12.5 million rows; here it is under 320,000);
- the descendants of a clip within ``ANCESTRY_SPAN`` levels, breadth first, are one index range
  scan on ``(ancestor, distance, descendant)``, and a keyset cursor continues it;
- the ancestors of a clip at depth d are d / ``ANCESTRY_SPAN`` primary-key lookups;
- exact counts are denormalised on the node and bumped in the transaction that creates the
  child, under a lock on the root(s), which every writer in a tree takes first.

Node ids come from a sequence and a child is always created after its parents exist, so
``parent < child`` holds for every edge; the database checks it, which makes a cycle impossible
whatever code writes the table.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

ANCESTRY_SPAN = 64


class EdgeKind(models.TextChoices):
    REMIX = "remix"
    EXTENSION = "extension"
    EDIT = "edit"
    CAMEO_SWAP = "cameo_swap"
    STITCH = "stitch"


class LineageNode(models.Model):
    id = models.BigAutoField(primary_key=True)
    # No database constraint: jobs are never hard-deleted (videos are soft-deleted), and the
    # benchmark seeds a million-node graph without a million jobs. The ORM still joins on it.
    # A hard-deleted job (its account deleted) leaves its node as a hole in the graph, so the
    # clips made from it keep their place and counts.
    job = models.OneToOneField(
        "generation.GenerationJob",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="lineage_node",
    )
    # The first parent and the root reached through first parents ("the original"); null on a
    # root. A stitch has more parents, in LineageEdge.
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    root = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    depth = models.PositiveIntegerField(default=0)
    # True when the node or one of its ancestors has several parents (a stitch): only then can
    # two routes reach one ancestor, and ancestor queries must keep the shorter.
    joined = models.BooleanField(db_default=False)
    children_count = models.PositiveIntegerField(default=0)
    descendants_count = models.PositiveBigIntegerField(default=0)
    # Remix velocity, exponentially decayed (remix.services.velocity_*): ``*_score`` is the
    # decayed number of remixes at ``*_at``; ``*_key`` is ln(score) + lambda * epoch seconds, which
    # orders nodes by their current decayed score without recomputing anything at read time.
    # ``velocity`` counts direct remixes; ``tree_velocity`` (kept on roots) every remix below.
    velocity_score = models.FloatField(default=0.0)
    velocity_at = models.DateTimeField(null=True, blank=True)
    velocity_key = models.FloatField(null=True, blank=True)
    tree_velocity_score = models.FloatField(default=0.0)
    tree_velocity_at = models.DateTimeField(null=True, blank=True)
    tree_velocity_key = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["-tree_velocity_key", "id"],
                name="lineage_tree_velocity_idx",
                condition=models.Q(root__isnull=True, tree_velocity_key__isnull=False),
            ),
            models.Index(fields=["root", "depth", "id"], name="lineage_root_depth_idx"),
        ]

    def __str__(self) -> str:
        return f"node {self.pk} (job {self.job_id}, depth {self.depth})"

    @property
    def root_id_or_self(self) -> int:
        return self.root_id or self.pk


class LineageEdge(models.Model):
    """parent -> child, with how the child was made from it and by whom."""

    id = models.BigAutoField(primary_key=True)
    # Indexed by the unique (parent, child) and the (child, parent) index below.
    parent = models.ForeignKey(
        LineageNode, on_delete=models.PROTECT, related_name="child_edges", db_index=False
    )
    child = models.ForeignKey(
        LineageNode, on_delete=models.PROTECT, related_name="parent_edges", db_index=False
    )
    kind = models.CharField(max_length=16, choices=EdgeKind.choices)
    # The child's prompt (for an edit, the instruction): what changed relative to the parent.
    prompt = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parent", "child"], name="lineage_edge_unique"),
            # Safety: parents are always older than their children, so no cycle can be written.
            models.CheckConstraint(
                condition=models.Q(parent__lt=models.F("child")), name="lineage_edge_acyclic"
            ),
        ]
        indexes = [models.Index(fields=["child", "parent"], name="lineage_edge_child_idx")]

    def __str__(self) -> str:
        return f"{self.parent_id} -[{self.kind}]-> {self.child_id}"


class Ancestry(models.Model):
    """``ancestor`` is ``distance`` (1..ANCESTRY_SPAN, the shortest route) generations above
    ``descendant``: the downward index. Its key is the order of a breadth-first page."""

    # Written only with its node, in the same statement, and nodes are never deleted: no
    # per-row foreign key checks (up to ANCESTRY_SPAN rows per remix) and no single-column
    # indexes (the key serves every read; reads upward use AncestorPath).
    pk = models.CompositePrimaryKey("ancestor", "distance", "descendant")
    ancestor = models.ForeignKey(
        LineageNode,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    distance = models.PositiveSmallIntegerField()
    descendant = models.ForeignKey(
        LineageNode,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(distance__gte=1, distance__lte=ANCESTRY_SPAN),
                name="ancestry_distance_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.ancestor_id} is {self.distance} above {self.descendant_id}"


class AncestorPath(models.Model):
    """The same ancestry read upward: a node's ancestors within ANCESTRY_SPAN as two parallel
    arrays, nearest first. One row per derived clip, so the ancestors of a clip d deep are
    d / ANCESTRY_SPAN primary-key lookups instead of d index entries."""

    node = models.OneToOneField(
        LineageNode,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    ancestors = ArrayField(models.BigIntegerField())
    distances = ArrayField(models.PositiveSmallIntegerField())

    def __str__(self) -> str:
        return f"path of {self.node_id}"
