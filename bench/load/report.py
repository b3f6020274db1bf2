"""The load report: locust's CSV statistics and two ``/metrics`` scrapes, as one table.

Pure functions over text, so they are testable without a server: :func:`read_locust_stats`
and :func:`read_locust_failures` parse locust's ``--csv`` files, :func:`parse_scrape` a
Prometheus text exposition, :func:`metric_sections` the changes between the scrape taken
before the load and the one taken after it, and :func:`render` prints everything.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

AGGREGATED = "Aggregated"
PREFIX = "montage_"


# --- Locust -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteStats:
    kind: str  # GET, POST, ... or WS
    name: str
    requests: int
    failures: int
    median_ms: float | None
    p99_ms: float | None
    average_ms: float
    max_ms: float
    rps: float  # locust's own figure: requests over this row's first-to-last-request window


def _number(raw: str) -> float | None:
    raw = (raw or "").strip()
    if raw in {"", "N/A"}:
        return None
    return float(raw)


def read_locust_stats(text: str) -> tuple[list[RouteStats], RouteStats | None]:
    """(one row per route, the aggregated row) from ``<prefix>_stats.csv``."""
    rows, total = [], None
    for row in csv.DictReader(io.StringIO(text)):
        stats = RouteStats(
            kind=row["Type"],
            name=row["Name"],
            requests=int(row["Request Count"]),
            failures=int(row["Failure Count"]),
            median_ms=_number(row["50%"]),
            p99_ms=_number(row["99%"]),
            average_ms=_number(row["Average Response Time"]) or 0.0,
            max_ms=_number(row["Max Response Time"]) or 0.0,
            rps=_number(row["Requests/s"]) or 0.0,
        )
        if stats.name == AGGREGATED and not stats.kind:
            total = stats
        else:
            rows.append(stats)
    return rows, total


@dataclass(frozen=True)
class Failure:
    method: str
    name: str
    error: str
    occurrences: int


def read_locust_failures(text: str) -> list[Failure]:
    """``<prefix>_failures.csv``, most frequent first."""
    failures = [
        Failure(row["Method"], row["Name"], row["Error"], int(row["Occurrences"]))
        for row in csv.DictReader(io.StringIO(text))
    ]
    return sorted(failures, key=lambda f: -f.occurrences)


# --- Prometheus ---------------------------------------------------------------------------

# (sample name, sorted label pairs) -> value
SampleKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class Scrape:
    """One ``/metrics`` answer. ``error`` says why there is nothing to read, if so."""

    families: dict[str, str] = field(default_factory=dict)  # family name -> type
    samples: dict[SampleKey, float] = field(default_factory=dict)
    family_of: dict[str, str] = field(default_factory=dict)  # sample name -> family name
    error: str | None = None

    @property
    def available(self) -> bool:
        return self.error is None


def parse_scrape(text: str | None, *, error: str | None = None) -> Scrape:
    """Montage's series (``montage_*``) of a Prometheus text exposition. A body that does not
    parse, or that holds no ``montage_`` series, is reported as missing rather than as a
    scrape where nothing happened."""
    if error is not None or text is None:
        return Scrape(error=error or "no answer")
    from prometheus_client.parser import text_string_to_metric_families

    scrape = Scrape()
    try:
        for family in text_string_to_metric_families(text):
            if not family.name.startswith(PREFIX):
                continue
            scrape.families[family.name] = family.type
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue  # creation timestamps, not measurements
                key = (sample.name, tuple(sorted(sample.labels.items())))
                scrape.samples[key] = float(sample.value)
                scrape.family_of[sample.name] = family.name
    except ValueError as exc:
        return Scrape(error=f"not Prometheus text ({exc})")
    if not scrape.families:
        return Scrape(error="no montage_ series")
    return scrape


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile (0..1) of a histogram given as cumulative ``(upper bound, count)``
    pairs, interpolated linearly inside the bucket it falls in, as Prometheus's
    ``histogram_quantile`` does. None when the histogram is empty; the last finite bound when
    the quantile falls in the ``+Inf`` bucket."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count
            )
        previous_bound, previous_count = bound, count
    return previous_bound


# What the report shows, matched on the family name: (title, words all of which must appear
# in it, words none of which may). Families are shown under the first title they match.
CATEGORIES = (
    ("request latency by route", ("request",), ("job", "websocket")),
    ("queue depth", ("queue",), ()),
    ("job durations", ("job", "duration"), ()),
    ("job durations", ("job", "seconds"), ()),
    ("job outcomes", ("job",), ()),
    ("websocket connections", ("websocket",), ()),
    ("websocket connections", ("ws_",), ()),
    ("moderation decisions", ("moderation",), ()),
)


def category_of(family: str) -> str:
    name = family.lower()
    for title, required, excluded in CATEGORIES:
        if all(w in name for w in required) and not any(w in name for w in excluded):
            return title
    return "other"


def _labels(pairs: tuple[tuple[str, str], ...], *, drop: tuple[str, ...] = ()) -> str:
    shown = [f"{k}={v}" for k, v in pairs if k not in drop]
    return "{" + ",".join(shown) + "}" if shown else ""


@dataclass(frozen=True)
class MetricLine:
    series: str
    text: str
    weight: float  # for ordering: the size of the change
    reset: bool = False  # a counter went backwards: its store was emptied meanwhile


def _histogram_lines(family: str, start: Scrape, end: Scrape) -> list[MetricLine]:
    unit_ms = 1000.0 if family.endswith("_seconds") else 1.0
    unit = "ms" if unit_ms == 1000.0 else ""
    groups: dict[tuple, dict] = {}
    for (name, labels), value in end.samples.items():
        if end.family_of.get(name) != family:
            continue
        delta = value - start.samples.get((name, labels), 0.0)
        if name.endswith("_bucket"):
            bound = dict(labels).get("le", "+Inf")
            rest = tuple(p for p in labels if p[0] != "le")
            groups.setdefault(rest, {}).setdefault("buckets", []).append((float(bound), delta))
        elif name.endswith("_count"):
            groups.setdefault(labels, {})["count"] = delta
        elif name.endswith("_sum"):
            groups.setdefault(labels, {})["sum"] = delta
    lines = []
    for labels, parts in groups.items():
        count = parts.get("count", 0.0)
        series = f"{family}{_labels(labels)}"
        deltas = [count, parts.get("sum", 0.0), *(d for _, d in parts.get("buckets", []))]
        if any(d < 0 for d in deltas):
            before = start.samples.get((f"{family}_count", labels), 0.0)
            after = end.samples.get((f"{family}_count", labels), 0.0)
            text = f"went backwards ({before:g} -> {after:g} observations): reset meanwhile"
            lines.append(MetricLine(series, text, math.inf, reset=True))
            continue
        if count == 0:
            continue
        text = f"+{count:.0f}"
        if "sum" in parts:
            text += f", mean {parts['sum'] / count * unit_ms:.1f}{unit}"
        buckets = parts.get("buckets", [])
        p50, p99 = histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets)
        if p50 is not None and p99 is not None:
            text += f", ~p50 {p50 * unit_ms:.1f}{unit}, ~p99 {p99 * unit_ms:.1f}{unit}"
        lines.append(MetricLine(series, text, count))
    return lines


def _plain_lines(
    family: str, kind: str, start: Scrape, end: Scrape, during: Scrape | None
) -> list[MetricLine]:
    lines = []
    for (name, labels), value in end.samples.items():
        if end.family_of.get(name) != family:
            continue
        before = start.samples.get((name, labels))
        if kind == "gauge":
            values = [before] + ([during.samples.get((name, labels))] if during else []) + [value]
            text = " -> ".join("absent" if v is None else f"{v:g}" for v in values)
            seen = [v for v in values if v is not None]
            weight = max(seen) - min(seen) + max(abs(v) for v in seen) * 1e-9
        else:
            delta = value - (before or 0.0)
            if delta < 0:
                text = f"went backwards ({before:g} -> {value:g}): reset meanwhile"
                lines.append(MetricLine(f"{name}{_labels(labels)}", text, math.inf, reset=True))
                continue
            if delta == 0:
                continue
            text = f"{delta:+g}"
            weight = abs(delta)
        lines.append(MetricLine(f"{name}{_labels(labels)}", text, weight))
    return lines


def metric_sections(
    start: Scrape, end: Scrape, during: Scrape | None = None
) -> dict[str, list[MetricLine]]:
    """Per category, what changed between ``start`` and ``end``: counters and histograms as
    increases (histograms with the mean and bucket-estimated p50/p99 of the increase), gauges
    as before -> (during ->) after. Largest changes first."""
    sections: dict[str, list[MetricLine]] = {}
    for family, kind in sorted(end.families.items()):
        if kind == "histogram":
            lines = _histogram_lines(family, start, end)
        else:
            lines = _plain_lines(family, kind, start, end, during)
        if lines:
            sections.setdefault(category_of(family), []).extend(lines)
    for lines in sections.values():
        lines.sort(key=lambda line: (-line.weight, line.series))
    return sections


@dataclass(frozen=True)
class Scrapes:
    """One server's scrapes: before the load, after it, and one while it runs (gauges such
    as queue depth and open sockets are back to rest by the end)."""

    before: Scrape
    after: Scrape
    during: Scrape | None = None


# --- Rendering ----------------------------------------------------------------------------


@dataclass
class RunFacts:
    """What the runner knows besides the CSV and the scrapes."""

    users: int
    spawn_rate: float
    run_time_s: float
    cpus: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    gunicorn_workers: int
    max_requests: int
    gunicorn_timeout_s: int = 30
    seeded: str = ""
    notes: list[str] = field(default_factory=list)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def window_seconds(total: RouteStats | None) -> float | None:
    """The window locust's aggregated rate is measured over (first to last request)."""
    if total is None or total.rps <= 0:
        return None
    return total.requests / total.rps


def render(
    rows: list[RouteStats],
    total: RouteStats | None,
    failures: list[Failure],
    facts: RunFacts,
    scrapes: dict[str, Scrapes],
    *,
    per_section: int = 12,
) -> str:
    """The printed report. ``scrapes`` maps a server's name to its scrapes; a category
    found in none of the first server's series is looked up in the next."""
    window = window_seconds(total)
    out = [
        f"Load: {facts.users} users (spawn {facts.spawn_rate:g}/s), run time "
        f"{facts.run_time_s:g} s, request cap {facts.max_requests:,}; gunicorn -w "
        f"{facts.gunicorn_workers} (sync, timeout {facts.gunicorn_timeout_s} s) + uvicorn (/ws/) "
        f"+ Celery workers -Q gpu -c 1 and -Q cpu -c 1, "
        f"{facts.cpus} CPUs shared with other users of the machine",
    ]
    if facts.seeded:
        out.append(f"Seeded: {facts.seeded}")
    header = f"{'type':<6} {'route':<52} {'reqs':>7} {'req/s':>7} {'p50':>7} {'p99':>7} {'fail':>6}"
    out += ["", header, "-" * len(header)]
    ordered = sorted(rows, key=lambda r: (r.kind == "WS", -r.requests, r.name))
    for row in ordered:
        rate = row.requests / window if window else row.rps
        out.append(
            f"{row.kind:<6} {row.name[:52]:<52} {row.requests:>7} {rate:>7.2f} "
            f"{_ms(row.median_ms):>7} {_ms(row.p99_ms):>7} {row.failures:>6}"
        )
    out.append("-" * len(header))
    if total is not None:
        out.append(
            f"{'all':<6} {'(p50/p99 in ms)':<52} {total.requests:>7} {total.rps:>7.2f} "
            f"{_ms(total.median_ms):>7} {_ms(total.p99_ms):>7} {total.failures:>6}"
        )
        share = total.failures / total.requests * 100 if total.requests else 0.0
        span = f" over {window:.1f} s" if window else ""
        out.append(
            f"Overall: {total.requests} requests{span}, {total.rps:.1f} req/s, "
            f"{total.failures} failures ({share:.2f}%)"
        )
        if total.requests >= facts.max_requests:
            out.append(f"Stopped by the request cap ({facts.max_requests:,}).")
    else:
        out.append("Overall: locust recorded no requests.")
    before, after = facts.load_before, facts.load_after
    out.append(
        f"Load average (1/5/15 min): before {before[0]:.2f}/{before[1]:.2f}/{before[2]:.2f}, "
        f"after {after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f} on {facts.cpus} CPUs"
    )
    if failures:
        out += ["", "Failures (most frequent first):"]
        for failure in failures[:8]:
            out.append(
                f"  {failure.occurrences:>5} x {failure.method} {failure.name}: "
                f"{failure.error[:120]}"
            )
    out += ["", *render_metrics(scrapes, per_section=per_section)]
    out += facts.notes
    return "\n".join(out)


def render_metrics(scrapes: dict[str, Scrapes], *, per_section: int = 12) -> list[str]:
    titles = []
    for title, _, _ in CATEGORIES:
        if title not in titles:
            titles.append(title)
    out = ["/metrics (counters: increase during the load; gauges: before -> during -> after):"]
    for server, taken in scrapes.items():
        if not taken.after.available:
            out.append(f"  {server}: missing ({taken.after.error})")
        elif not taken.before.available:
            out.append(
                f"  {server}: first scrape missing ({taken.before.error}); counts are totals"
            )
    available = {server: taken for server, taken in scrapes.items() if taken.after.available}
    if not available:
        return out
    sections = {
        server: metric_sections(
            taken.before if taken.before.available else Scrape(),
            taken.after,
            taken.during if taken.during and taken.during.available else None,
        )
        for server, taken in available.items()
    }
    present = {category_of(f) for taken in available.values() for f in taken.after.families}
    if any(line.reset for sec in sections.values() for lines in sec.values() for line in lines):
        out.append(
            "  WARNING: counters went backwards: the metrics store was emptied during the load "
            "(another user of the same Redis database?); increases below are not comparable."
        )
    for title in [*titles, "other"]:
        found = next(((s, sec[title]) for s, sec in sections.items() if title in sec), None)
        if found is None:
            if title in present:
                out.append(f"  {title}: no change")
            elif title != "other":
                out.append(f"  {title}: no such series")
            continue
        server, lines = found
        out.append(f"  {title} ({server}):")
        for line in lines[:per_section]:
            out.append(f"    {line.series}  {line.text}")
        if len(lines) > per_section:
            out.append(f"    ... {len(lines) - per_section} more in the saved scrapes")
    return out
