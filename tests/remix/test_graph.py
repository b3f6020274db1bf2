"""The lineage graph: edges recorded when a derived clip is stored, exact counts, depth and the
original, several parents, and queries beyond the stored ancestry span."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from generation.models import JobKind
from remix import selectors
from remix.models import (
    ANCESTRY_SPAN,
    AncestorPath,
    Ancestry,
    EdgeKind,
    LineageEdge,
    LineageNode,
)
from remix.services import lineage_record
from tests.factories import UserFactory
from tests.remix.helpers import cte_ancestors, cte_descendants, make_clip, node

pytestmark = pytest.mark.django_db


def test_a_remix_records_one_edge_with_kind_prompt_and_author_and_counts_it():
    alice, bob = UserFactory(), UserFactory()
    original = make_clip(alice)
    assert not LineageNode.objects.exists()  # an original enters the graph when remixed
    remix = make_clip(bob, parent=original, prompt="a blue ball")
    edge = LineageEdge.objects.get()
    assert (edge.parent.job_id, edge.child.job_id) == (original.job_id, remix.job_id)
    assert (edge.kind, edge.prompt, edge.created_by) == (EdgeKind.REMIX, "a blue ball", bob)
    root, child = node(original), node(remix)
    assert (root.children_count, root.descendants_count, root.depth, root.root_id) == (
        1,
        1,
        0,
        None,
    )
    assert (child.depth, child.root_id, child.parent_id) == (1, root.pk, root.pk)


def test_kinds_follow_the_job_and_a_changed_cameo_is_a_cameo_swap():
    alice = UserFactory()
    original = make_clip(alice, cameos=["cameo_a"])
    make_clip(alice, parent=original, kind=JobKind.EXTEND)
    make_clip(alice, parent=original, kind=JobKind.EDIT)
    make_clip(alice, parent=original, cameos=["cameo_b"])
    make_clip(alice, parent=original, cameos=["cameo_a"])
    kinds = list(LineageEdge.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["extension", "edit", "cameo_swap", "remix"]


def test_counts_depth_and_original_across_three_generations():
    alice = UserFactory()
    a = make_clip(alice)
    b1, b2 = make_clip(alice, parent=a), make_clip(alice, parent=a)
    c = make_clip(alice, parent=b1)
    d = make_clip(alice, parent=c)
    counts = {
        clip: (node(clip).children_count, node(clip).descendants_count, node(clip).depth)
        for clip in (a, b1, b2, c, d)
    }
    assert counts == {a: (2, 4, 0), b1: (1, 2, 1), b2: (0, 0, 1), c: (1, 1, 2), d: (0, 0, 3)}
    assert {node(x).root_id for x in (b1, b2, c, d)} == {node(a).pk}


def test_a_stitch_has_several_parents_and_counts_a_shared_ancestor_once():
    alice = UserFactory()
    a = make_clip(alice)
    b, c = make_clip(alice, parent=a), make_clip(alice, parent=a)
    x = make_clip(alice, parent=b)  # a job has one parent column; the stitch is recorded below
    stitched = lineage_record(
        job_id=x.job_id, parent_job_ids=[b.job_id], kind=EdgeKind.REMIX
    )  # already there: recording again changes nothing
    assert stitched == node(x).pk
    y = make_clip(alice)
    y_node = lineage_record(
        job_id=y.job_id, parent_job_ids=[b.job_id, c.job_id], kind=EdgeKind.STITCH
    )
    assert set(LineageEdge.objects.filter(child_id=y_node).values_list("parent_id", flat=True)) == {
        node(b).pk,
        node(c).pk,
    }
    # a is above y through both parents: one more descendant, not two.
    assert node(a).descendants_count == 4
    assert (node(b).children_count, node(c).children_count) == (2, 1)
    assert dict(
        Ancestry.objects.filter(descendant_id=y_node).values_list("ancestor_id", "distance")
    ) == {node(b).pk: 1, node(c).pk: 1, node(a).pk: 2}
    path = AncestorPath.objects.get(node_id=y_node)
    assert list(zip(path.distances, path.ancestors, strict=True)) == sorted(
        [(1, node(b).pk), (1, node(c).pk), (2, node(a).pk)]
    )
    assert selectors.ancestors_with_distance(y_node, joined=True) == cte_ancestors(y_node)


def test_cycles_are_impossible_even_writing_the_table_directly():
    alice = UserFactory()
    a = make_clip(alice)
    b = make_clip(alice, parent=a)
    with pytest.raises(IntegrityError), transaction.atomic():
        LineageEdge.objects.create(parent=node(b), child=node(a), kind=EdgeKind.REMIX)
    with pytest.raises(IntegrityError), transaction.atomic():
        LineageEdge.objects.create(parent=node(a), child=node(a), kind=EdgeKind.REMIX)
    # Recording an existing clip under a new parent is a no-op, not a new edge.
    assert lineage_record(job_id=a.job_id, parent_job_ids=[b.job_id], kind="remix") == node(a).pk
    assert LineageEdge.objects.count() == 1


def test_ancestry_is_cut_at_the_span_and_queries_beyond_it_match_a_recursive_cte():
    alice = UserFactory()
    root = make_clip(alice)
    chain = [root]
    depth = 2 * ANCESTRY_SPAN + 7
    for _ in range(depth):
        chain.append(make_clip(alice, parent=chain[-1]))
    # a side branch deep in the chain, so bands beyond the span have more than one node
    side = make_clip(alice, parent=chain[ANCESTRY_SPAN + 3])
    make_clip(alice, parent=side)
    deepest = node(chain[-1])
    assert deepest.depth == depth
    assert Ancestry.objects.filter(descendant=deepest).count() == ANCESTRY_SPAN
    assert selectors.ancestors_with_distance(deepest.pk, joined=False) == cte_ancestors(deepest.pk)
    root_node = node(root)
    assert root_node.descendants_count == depth + 2
    expected = cte_descendants(root_node.pk)
    for page_size in (1, 7, 50, 1000):
        walked, after = [], (0, 0)
        while True:
            rows = selectors.descendant_rows(root_node.pk, after=after, limit=page_size)
            walked += [(d, i) for d, i, _ in rows]
            if len(rows) < page_size:
                break
            after = (rows[-1][0], rows[-1][1])
        assert walked == expected, page_size
    walked, cursor = [], None
    while True:
        items, cursor = selectors.ancestors_page(clip=chain[-1], user=alice, cursor=cursor, limit=7)
        walked += [(item.distance, item.node.pk) for item in items]
        if cursor is None:
            break
    assert walked == sorted((d, i) for i, d in cte_ancestors(deepest.pk).items())
    # A stitch of the deepest clip and the side branch: two routes to the chain's top.
    stitch = make_clip(alice)
    stitched = lineage_record(
        job_id=stitch.job_id, parent_job_ids=[chain[-1].job_id, side.job_id], kind="stitch"
    )
    assert node(stitch).joined and not deepest.joined
    assert selectors.ancestors_with_distance(stitched, joined=True) == cte_ancestors(stitched)
    assert node(root).descendants_count == depth + 3
    mid = node(chain[ANCESTRY_SPAN // 2])
    rows = selectors.descendant_rows(mid.pk, limit=10_000)
    assert [(d, i) for d, i, _ in rows] == cte_descendants(mid.pk)
    assert sorted(selectors.descendant_job_ids([root.job_id])) == sorted(
        LineageNode.objects.exclude(pk=root_node.pk).values_list("job_id", flat=True)
    )
