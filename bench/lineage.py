"""Lineage benchmark: the remix graph's queries against a plain recursive CTE, on a million clips.

Run: ``python -m bench.lineage [--nodes N] [--viral N] [--chain N] [--repeat N]``.

The graph is seeded set-based (COPY, with the secondary indexes and foreign keys built after
the load) into the benchmark's own database (``bench.common``): ``--nodes`` clips in all, one
viral tree of ``--viral`` descendants, one chain ``--chain`` deep, and many small trees (1-20
clips) for the rest; creation order interleaves the trees, as real traffic would. Only the
lineage tables are seeded: nodes refer to jobs without a database constraint, so no job or clip
rows are needed, and the figures are those of the structural queries (the permission filter of
the API adds one indexed lookup of the page's clips).

The baseline, in the same run and database, is a recursive CTE over the nodes' ``parent_id``
column (indexed), which is what a lineage kept as a parent pointer alone would run. Every
answer of the lineage queries is checked against the CTE's before anything is timed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
import uuid

import numpy as np

from bench.common import bench_database, emit, interleaved_best

TABLES = ["remix_lineagenode", "remix_lineageedge", "remix_ancestry", "remix_ancestorpath"]
CREATED_AT = "2026-11-01 00:00:00+00"
JOB_BASE = uuid.UUID("01900000-0000-7000-8000-000000000000").int

CTE_ANCESTORS = """
WITH RECURSIVE up(id, parent_id, distance) AS (
    SELECT id, parent_id, 0 FROM remix_lineagenode WHERE id = %s
    UNION ALL
    SELECT n.id, n.parent_id, up.distance + 1
    FROM remix_lineagenode n JOIN up ON n.id = up.parent_id
    WHERE up.distance < %s
)
SELECT id, distance FROM up WHERE distance > 0
"""

CTE_DOWN = """
WITH RECURSIVE down(id, distance) AS (
    SELECT %(node)s::bigint, 0
    UNION ALL
    SELECT n.id, down.distance + 1
    FROM remix_lineagenode n JOIN down ON n.parent_id = down.id
)
"""
PAGE_TAIL = """SELECT distance, id FROM down WHERE distance > 0 AND (distance, id) > (%(d)s, %(i)s)
ORDER BY distance, id LIMIT %(limit)s"""
# Constant SQL (the parameters are bound), assembled from the shared CTE.
CTE_PAGE = CTE_DOWN + PAGE_TAIL
CTE_ALL = CTE_DOWN + "SELECT distance, id FROM down WHERE distance > 0 ORDER BY distance, id"  # noqa: S608
CTE_COUNT = CTE_DOWN + "SELECT count(*) FROM down WHERE distance > 0"  # noqa: S608


# --- The graph ----------------------------------------------------------------------------


class Forest:
    """Node ``i`` (0-based) is stored with id ``i + 1``; ``parent[i]`` is -1 on a root."""

    def __init__(self, parent: np.ndarray, viral_root: int, chain_root: int, deepest: int):
        self.parent = parent
        self.viral_root, self.chain_root, self.deepest = viral_root, chain_root, deepest
        n = len(parent)
        parents = parent.tolist()
        depth, root, descendants = [0] * n, list(range(n)), [0] * n
        for i, p in enumerate(parents):  # parents come first: one pass settles depth and root
            if p >= 0:
                depth[i] = depth[p] + 1
                root[i] = root[p]
        for i in range(n - 1, -1, -1):
            p = parents[i]
            if p >= 0:
                descendants[p] += descendants[i] + 1
        self.depth = np.array(depth, dtype=np.int64)
        self.root = np.array(root, dtype=np.int64)
        self.descendants = np.array(descendants, dtype=np.int64)
        has_parent = parent >= 0
        self.children = np.bincount(parent[has_parent], minlength=n).astype(np.int64)

    def ancestry(self, span: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(descendant, ancestor, distance) for every ancestor up to ``span`` levels up, sorted
        by descendant, then distance: each node's path in order."""
        nodes = np.arange(len(self.parent), dtype=np.int64)
        ancestor = self.parent.copy()
        parts = []
        for distance in range(1, span + 1):
            alive = ancestor >= 0
            if not alive.any():
                break
            parts.append(
                (nodes[alive], ancestor[alive], np.full(alive.sum(), distance, dtype=np.int64))
            )
            ancestor[alive] = self.parent[ancestor[alive]]
        descendant, up, dist = (np.concatenate(column) for column in zip(*parts, strict=True))
        order = np.lexsort((dist, descendant))
        return descendant[order], up[order], dist[order]


def forest_build(*, nodes: int, viral: int, chain: int, seed: int = 7) -> Forest:
    """One viral tree (``viral`` descendants under one root; three in ten remix the root, the
    rest a random earlier remix), one chain ``chain`` deep, small trees (1-20 clips) for the
    rest. Creation times interleave the trees; ids follow creation order, so a parent's id is
    always below its children's."""
    rng = np.random.default_rng(seed)
    viral_n = viral + 1
    parents: list[np.ndarray] = []
    times: list[np.ndarray] = []

    idx = np.arange(viral_n)
    viral_parent = np.where(
        rng.random(viral_n) < 0.3, 0, (rng.random(viral_n) * np.maximum(idx, 1)).astype(np.int64)
    )
    viral_parent[0] = -1
    parents.append(viral_parent)
    times.append(np.sort(rng.random(viral_n)))

    chain_parent = np.arange(-1, chain, dtype=np.int64)
    chain_parent[0] = -1
    parents.append(chain_parent)
    times.append(np.sort(rng.random(chain + 1)))

    remaining = nodes - viral_n - (chain + 1)
    if remaining < 0:
        raise ValueError("nodes must cover the viral tree and the chain")
    sizes = []
    while remaining > 0:
        size = int(min(remaining, rng.integers(1, 21)))
        sizes.append(size)
        remaining -= size
    sizes = np.array(sizes, dtype=np.int64)
    starts_local = np.repeat(np.cumsum(sizes) - sizes, sizes)
    local = np.arange(sizes.sum()) - starts_local
    small_parent = np.where(
        local == 0, -1, (rng.random(len(local)) * np.maximum(local, 1)).astype(np.int64)
    )
    parents.append(np.where(small_parent >= 0, small_parent + starts_local, -1))
    tree_start = np.repeat(rng.random(len(sizes)) * 0.95, sizes)
    times.append(tree_start + local * 1e-6)

    # Offsets turn each part's local parent indices into global ones, then creation order
    # relabels every node.
    offsets = np.cumsum([0] + [len(p) for p in parents[:-1]])
    parent_all = np.concatenate(
        [np.where(p >= 0, p + o, -1) for p, o in zip(parents, offsets, strict=True)]
    )
    order = np.argsort(np.concatenate(times), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    parent = np.where(parent_all[order] >= 0, rank[np.maximum(parent_all[order], 0)], -1)
    assert (parent < np.arange(len(parent))).all()
    chain_root = int(rank[offsets[1]])
    deepest = int(rank[offsets[1] + chain])
    return Forest(parent.astype(np.int64), int(rank[0]), chain_root, deepest)


def job_uuid(i: int) -> uuid.UUID:
    return uuid.UUID(int=JOB_BASE + i)


def _copy(cursor, table: str, columns: str, lines) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for count, line in enumerate(lines, 1):
            buffer.write(line)
            if count % 200_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


@contextlib.contextmanager
def _bulk_load(cursor):
    """Drops the lineage tables' keys, foreign keys and indexes for the load and builds them
    again afterwards (one sort each instead of millions of index insertions)."""
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype"
        " FROM pg_constraint"
        " WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('f', 'u', 'p')"
        " ORDER BY contype = 'f' DESC",
        [TABLES],
    )
    constraints = cursor.fetchall()  # foreign keys first: they depend on the others
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))",
        [TABLES],
    )
    indexes = cursor.fetchall()
    for table, name, _, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    for _, definition in indexes:
        cursor.execute(definition)
    for table, name, definition, _ in reversed(constraints):
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def graph_seed(forest: Forest) -> None:
    """Writes ``forest`` into the lineage tables, counters included, as the services would
    have left it."""
    from django.db import connection

    from remix.models import ANCESTRY_SPAN

    n = len(forest.parent)
    ids = np.arange(1, n + 1)
    parent_id = np.where(forest.parent >= 0, forest.parent + 1, 0)
    root_id = np.where(forest.parent >= 0, forest.root + 1, 0)

    def null(value) -> str:
        return str(value) if value else "\\N"

    node_lines = (
        f"{i}\t{job_uuid(i).hex}\t{null(p)}\t{null(r)}\t{d}\t{c}\t{s}\t0\t0\t{CREATED_AT}\n"
        for i, p, r, d, c, s in zip(
            ids.tolist(),
            parent_id.tolist(),
            root_id.tolist(),
            forest.depth.tolist(),
            forest.children.tolist(),
            forest.descendants.tolist(),
            strict=True,
        )
    )
    edge_lines = (
        f"{c}\t{p}\t{c}\tremix\t\t\\N\t{CREATED_AT}\n"
        for c, p in zip(ids.tolist(), parent_id.tolist(), strict=True)
        if p
    )
    descendant, ancestor, distance = forest.ancestry(ANCESTRY_SPAN)
    ancestry_lines = (
        f"{a}\t{k}\t{d}\n"
        for d, a, k in zip(
            (descendant + 1).tolist(), (ancestor + 1).tolist(), distance.tolist(), strict=True
        )
    )
    # The same rows as one path per node: runs of equal descendants, nearest first.
    starts = np.flatnonzero(np.r_[True, descendant[1:] != descendant[:-1]])
    ends = np.r_[starts[1:], len(descendant)]

    def path_lines():
        up, dist = (ancestor + 1).tolist(), distance.tolist()
        for node, start, end in zip(
            (descendant[starts] + 1).tolist(), starts.tolist(), ends.tolist(), strict=True
        ):
            ups = ",".join(map(str, up[start:end]))
            dists = ",".join(map(str, dist[start:end]))
            yield f"{node}\t{{{ups}}}\t{{{dists}}}\n"

    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        with _bulk_load(cursor):
            _copy(
                cursor,
                "remix_lineagenode",
                "id, job_id, parent_id, root_id, depth, children_count, descendants_count,"
                " velocity_score, tree_velocity_score, created_at",
                node_lines,
            )
            _copy(
                cursor,
                "remix_lineageedge",
                "id, parent_id, child_id, kind, prompt, created_by_id, created_at",
                edge_lines,
            )
            _copy(cursor, "remix_ancestry", "ancestor_id, distance, descendant_id", ancestry_lines)
            _copy(cursor, "remix_ancestorpath", "node_id, ancestors, distances", path_lines())
        for table in ("remix_lineagenode", "remix_lineageedge"):
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), max(id)) FROM " + table,  # noqa: S608
                [table],
            )
        for table in TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")


# --- The two ways of asking ---------------------------------------------------------------


def _fetch(sql: str, params) -> list:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def cte_ancestors(node: int, upto: int = 2**31 - 1) -> dict[int, int]:
    return dict(_fetch(CTE_ANCESTORS, [node, upto]))


def cte_page(node: int, after=(0, 0), limit: int = 50) -> list[tuple[int, int]]:
    return [
        tuple(r)
        for r in _fetch(CTE_PAGE, {"node": node, "d": after[0], "i": after[1], "limit": limit})
    ]


def cte_all(node: int) -> list[tuple[int, int]]:
    return [tuple(r) for r in _fetch(CTE_ALL, {"node": node})]


def cte_count(node: int) -> int:
    return _fetch(CTE_COUNT, {"node": node})[0][0]


def lineage_page(node: int, after=(0, 0), limit: int = 50) -> list[tuple[int, int]]:
    from remix.selectors import descendant_rows

    return [(d, i) for d, i, _ in descendant_rows(node, after=after, limit=limit)]


def lineage_all(node: int, page: int = 5000) -> list[tuple[int, int]]:
    rows, after = [], (0, 0)
    while True:
        got = lineage_page(node, after, page)
        rows += got
        if len(got) < page:
            return rows
        after = got[-1]


def lineage_count(node: int) -> int:
    from remix.models import LineageNode

    return LineageNode.objects.filter(pk=node).values_list("descendants_count", flat=True)[0]


def lineage_ancestors(node: int, upto: int = 2**31 - 1) -> dict[int, int]:
    """The ancestors as the API reads them, the node's row included (its ``joined`` flag picks
    the query)."""
    from remix.models import LineageNode
    from remix.selectors import ancestors_with_distance

    joined = LineageNode.objects.filter(pk=node).values_list("joined", flat=True)[0]
    return ancestors_with_distance(node, joined=joined, upto=upto)


def check_against_cte(forest: Forest, *, samples: int = 200, seed: int = 11) -> list[str]:
    """Every lineage answer on the seeded graph equals the CTE's: the deepest clip's ancestors,
    the whole breadth-first walk under the viral root and the chain, and ancestors, counts and
    descendants of ``samples`` random clips. Returns what was checked."""
    viral, chain, deepest = forest.viral_root + 1, forest.chain_root + 1, forest.deepest + 1
    checked = []
    assert lineage_ancestors(deepest) == cte_ancestors(deepest), "ancestors of the deepest"
    checked.append(f"ancestors of the deepest ({len(cte_ancestors(deepest))})")
    for name, node in (("viral root", viral), ("chain root", chain)):
        expected = cte_all(node)
        assert lineage_all(node) == expected, f"descendants of the {name}"
        assert lineage_count(node) == len(expected) == cte_count(node), f"count of the {name}"
        checked.append(f"all descendants and count of the {name} ({len(expected)})")
    rng = np.random.default_rng(seed)
    for node in (rng.integers(0, len(forest.parent), samples) + 1).tolist():
        assert lineage_ancestors(node) == cte_ancestors(node), f"ancestors of {node}"
        assert lineage_count(node) == cte_count(node), f"count of {node}"
        assert lineage_page(node, limit=100) == cte_page(node, limit=100), f"page of {node}"
    checked.append(f"ancestors, count and first page of {samples} random clips")
    return checked


# --- Figures ------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _figure(lines, name, ours, baseline, target_ms, what, against="the recursive CTE"):
    verdict = "ok" if ours * 1000 <= target_ms else "MISSED"
    emit(
        lines,
        f"lineage.{name}: {_ms(ours)} = {ours / baseline:.4f}x {against} "
        f"({_ms(baseline)}; {what}; target <= {target_ms} ms: {verdict})",
    )


def measure(forest: Forest, *, repeat: int, lines: list[str]) -> None:
    from django.db import connection, transaction

    from remix.models import ANCESTRY_SPAN
    from remix.services import lineage_record

    viral, deepest = forest.viral_root + 1, forest.deepest + 1
    tag = f"best of {repeat}, interleaved"

    best = interleaved_best(
        repeat,
        {"ours": lambda: lineage_ancestors(deepest), "cte": lambda: cte_ancestors(deepest)},
    )
    _figure(
        lines,
        "ancestors_deepest",
        best["ours"][0],
        best["cte"][0],
        5,
        f"all {len(best['ours'][1])} ancestors of the clip at depth {forest.depth[deepest - 1]}; "
        f"{tag}",
    )

    best = interleaved_best(
        repeat,
        {
            "ours": lambda: lineage_ancestors(deepest, 50),
            "cte": lambda: cte_ancestors(deepest, 50),
        },
    )
    assert best["ours"][1] == best["cte"][1]
    _figure(
        lines,
        "ancestors_page[deepest]",
        best["ours"][0],
        best["cte"][0],
        5,
        f"the 50 nearest ancestors (what an API page reads), against the CTE stopped at 50; {tag}",
    )

    walk = cte_all(viral)
    for label, after in (
        ("first", (0, 0)),
        ("middle", walk[len(walk) // 2]),
        ("last", walk[-51]),
    ):
        best = interleaved_best(
            repeat,
            {
                "ours": lambda a=after: lineage_page(viral, a),
                "cte": lambda a=after: cte_page(viral, a),
            },
        )
        assert best["ours"][1] == best["cte"][1]
        _figure(
            lines,
            f"descendants_page[{label}]",
            best["ours"][0],
            best["cte"][0],
            10,
            f"50 descendants of the viral root ({len(walk)}) breadth first, after {after}; {tag}",
        )
    chain_walk = cte_all(forest.chain_root + 1)
    deep_after = chain_walk[-200]
    best = interleaved_best(
        repeat,
        {
            "ours": lambda: lineage_page(forest.chain_root + 1, deep_after),
            "cte": lambda: cte_page(forest.chain_root + 1, deep_after),
        },
    )
    _figure(
        lines,
        "descendants_page[chain, deep]",
        best["ours"][0],
        best["cte"][0],
        10,
        f"50 descendants of the chain's root from depth {deep_after[0]}, "
        f"{deep_after[0] // ANCESTRY_SPAN} spans down; {tag}",
    )

    best = interleaved_best(
        repeat, {"ours": lambda: lineage_count(viral), "cte": lambda: cte_count(viral)}
    )
    assert best["ours"][1] == best["cte"][1]
    _figure(
        lines,
        "descendant_count",
        best["ours"][0],
        best["cte"][0],
        2,
        f"exact total under the viral root = {best['ours'][1]}; {tag}",
    )

    # Creating an edge: the whole service (locks, ancestry, counters, velocity) in its own
    # committed transaction, against inserting a row with a parent column, also committed.
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_parent_only (id bigserial PRIMARY KEY, job_id uuid NOT NULL,"
            " parent_id bigint)"
        )
        cursor.execute("CREATE INDEX ON bench_parent_only (parent_id)")
    rng = np.random.default_rng(3)
    viral_members = np.flatnonzero(forest.root == forest.viral_root)
    counter = iter(range(len(forest.parent) + 1, len(forest.parent) + 1_000_000))

    def ours_under(parent_index: int) -> tuple[float, float]:
        """(seconds of the service's work, seconds including the commit)."""
        started = time.perf_counter()
        with transaction.atomic():
            lineage_record(
                job_id=job_uuid(next(counter)),
                parent_job_ids=[job_uuid(parent_index + 1)],
                kind="remix",
            )
            worked = time.perf_counter() - started
        return worked, time.perf_counter() - started

    def plain(parent_index: int) -> tuple[float, float]:
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bench_parent_only (job_id, parent_id) VALUES (%s, %s)",
                [job_uuid(next(counter)), parent_index + 1],
            )
            worked = time.perf_counter() - started
        return worked, time.perf_counter() - started

    before = lineage_count(viral)
    creations = max(repeat, 30)
    samples = {"ours": [], "plain": []}
    for parent_index in rng.choice(viral_members, creations).tolist():
        samples["ours"].append(ours_under(parent_index))
        samples["plain"].append(plain(parent_index))
    assert lineage_count(viral) == before + creations == cte_count(viral)

    def median(name: str, which: int) -> float:
        return statistics.median(sample[which] for sample in samples[name])

    _figure(
        lines,
        "create_edge[viral]",
        median("ours", 0),
        median("plain", 0),
        5,
        f"median of {creations} remixes of random clips of the viral tree (depth up to "
        f"{forest.depth[viral_members].max()}): the service's statements in their transaction; "
        f"with the commit {_ms(median('ours', 1))} vs {_ms(median('plain', 1))}",
        against="inserting a row with a parent column",
    )
    deep = [ours_under(forest.deepest)[0] for _ in range(5)]
    emit(
        lines,
        f"lineage.create_edge[under the deepest]: {_ms(statistics.median(deep))} median of 5 "
        f"(every one of its {forest.depth[forest.deepest]} ancestors gains a descendant)",
    )

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM remix_ancestry")
        rows = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM remix_ancestry a JOIN remix_lineagenode n"
            " ON n.id = a.descendant_id WHERE n.root_id = %s",
            [forest.chain_root + 1],
        )
        chain_rows = cursor.fetchone()[0]
        sizes = {}
        for table in TABLES:
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            sizes[table] = cursor.fetchone()[0] / 1e6
    chain = int(forest.depth[forest.deepest])
    closure_chain = chain * (chain + 1) // 2
    closure_all = int(forest.depth.sum())
    emit(
        lines,
        f"lineage.storage: {rows:,} ancestry rows = {rows / closure_all:.3f}x a full closure "
        f"table ({closure_all:,}); the {chain}-deep chain holds {chain_rows:,} "
        f"= {chain_rows / closure_chain:.4f}x its full closure ({closure_chain:,}), at most "
        f"{ANCESTRY_SPAN} per clip; tables with indexes: "
        + ", ".join(f"{t} {mb:.0f} MB" for t, mb in sizes.items()),
    )


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--viral", type=int, default=200_000)
    parser.add_argument("--chain", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    lines: list[str] = []
    with bench_database():
        started = time.perf_counter()
        forest = forest_build(nodes=args.nodes, viral=args.viral, chain=args.chain)
        graph_seed(forest)
        emit(
            lines,
            f"lineage.seed: {len(forest.parent):,} clips (viral tree {args.viral:,}, chain "
            f"{args.chain:,}, small trees for the rest) seeded in "
            f"{time.perf_counter() - started:.0f} s",
        )
        checked = check_against_cte(forest)
        emit(lines, "lineage.correct: equal to the recursive CTE on " + "; ".join(checked))
        measure(forest, repeat=args.repeat, lines=lines)
    return lines


if __name__ == "__main__":
    from bench.common import configure

    configure()
    main()
