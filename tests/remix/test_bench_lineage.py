"""The lineage benchmark's own correctness: on a small graph seeded exactly as the benchmark
seeds a million clips, every lineage answer equals the plain recursive CTE's, and the check
notices a wrong answer."""

from __future__ import annotations

import pytest

from bench.lineage import check_against_cte, forest_build, graph_seed
from remix.models import ANCESTRY_SPAN, LineageNode

pytestmark = pytest.mark.django_db(transaction=True)


def test_seeded_graph_answers_equal_the_recursive_cte_and_a_wrong_count_is_caught():
    forest = forest_build(nodes=4000, viral=800, chain=2 * ANCESTRY_SPAN + 30)
    graph_seed(forest)
    assert LineageNode.objects.count() == 4000
    checked = check_against_cte(forest, samples=60)
    assert len(checked) == 4
    LineageNode.objects.filter(pk=forest.viral_root + 1).update(
        descendants_count=forest.descendants[forest.viral_root] + 1
    )
    with pytest.raises(AssertionError, match="count of the viral root"):
        check_against_cte(forest, samples=0)
