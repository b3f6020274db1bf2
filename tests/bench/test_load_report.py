"""The load report: locust's CSV and two /metrics scrapes turned into one table."""

import math

import pytest

from bench.load.report import (
    RunFacts,
    Scrapes,
    category_of,
    histogram_quantile,
    metric_sections,
    parse_scrape,
    read_locust_failures,
    read_locust_stats,
    render,
    window_seconds,
)

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)
STATS_CSV = "\n".join(
    [
        HEADER,
        "GET,/api/v1/feed/for_you?cursor,300,3,48,58.2,14.6,126.1,15452.1,10.0,0.1,"
        "48,66,87,110,120,130,130,140,150,150,150",
        "POST,/api/v1/generations,4,0,95,100.5,80.1,130.2,900.0,0.2,0.0,"
        "95,95,130,130,130,130,130,130,130,130,130",
        "WS,job.completed (submit -> event),2,1,13000,13000.0,12000.0,14000.0,0.0,0.1,0.05,"
        "13000,13000,14000,14000,14000,14000,14000,14000,14000,14000,14000",
        "GET,/api/v1/feed/following,0,0,0,0.0,0,0,0.0,0.0,0.0,"
        "N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A",
        ",Aggregated,306,4,48,150.0,14.6,14000.0,15000.0,10.2,0.13,"
        "48,66,87,110,120,130,130,9000,14000,14000,14000",
    ]
)
FAILURES_CSV = "\n".join(
    [
        "Method,Name,Error,Occurrences,First Seen,Last Seen",
        "GET,/api/v1/feed/for_you?cursor,HTTPError('500 Server Error'),3,1.0,2.0",
        "WS,job.completed (submit -> event),RuntimeError('job.failed: failed'),1,1.0,1.0",
    ]
)


def _facts(**overrides) -> RunFacts:
    values = {
        "users": 20,
        "spawn_rate": 5,
        "run_time_s": 60,
        "cpus": 2,
        "load_before": (1.0, 0.5, 0.25),
        "load_after": (3.5, 1.5, 0.75),
        "gunicorn_workers": 4,
        "max_requests": 20000,
    }
    return RunFacts(**{**values, **overrides})


def test_locust_stats_are_read_per_route_with_the_aggregate_apart():
    rows, total = read_locust_stats(STATS_CSV)

    assert [(r.kind, r.name, r.requests, r.failures) for r in rows] == [
        ("GET", "/api/v1/feed/for_you?cursor", 300, 3),
        ("POST", "/api/v1/generations", 4, 0),
        ("WS", "job.completed (submit -> event)", 2, 1),
        ("GET", "/api/v1/feed/following", 0, 0),
    ]
    assert (rows[0].median_ms, rows[0].p99_ms, rows[0].rps) == (48.0, 140.0, 10.0)
    assert (rows[3].median_ms, rows[3].p99_ms) == (None, None)
    assert (total.requests, total.failures, total.p99_ms, total.rps) == (306, 4, 9000.0, 10.2)
    assert window_seconds(total) == pytest.approx(30.0)


def test_failures_are_listed_most_frequent_first():
    failures = read_locust_failures(FAILURES_CSV)

    assert [(f.method, f.occurrences) for f in failures] == [("GET", 3), ("WS", 1)]
    assert failures[0].error == "HTTPError('500 Server Error')"
    assert read_locust_failures("") == []


def test_histogram_quantile_interpolates_inside_the_bucket():
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0)]

    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.05)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.95)
    # In the +Inf bucket: the last finite bound is all that is known.
    assert histogram_quantile(0.99, [(0.1, 10.0), (math.inf, 20.0)]) == pytest.approx(0.1)
    assert histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None
    assert histogram_quantile(0.5, []) is None


SCRAPE_BEFORE = """\
# HELP montage_http_request_duration_seconds Request latency.
# TYPE montage_http_request_duration_seconds histogram
montage_http_request_duration_seconds_bucket{le="0.05",method="GET",route="/api/v1/feed"} 0
montage_http_request_duration_seconds_bucket{le="0.25",method="GET",route="/api/v1/feed"} 0
montage_http_request_duration_seconds_bucket{le="2.5",method="GET",route="/api/v1/feed"} 10
montage_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/v1/feed"} 10
montage_http_request_duration_seconds_count{method="GET",route="/api/v1/feed"} 10
montage_http_request_duration_seconds_sum{method="GET",route="/api/v1/feed"} 20.0
# TYPE montage_jobs_finished counter
montage_jobs_finished_total{outcome="completed"} 1
# TYPE montage_queue_messages gauge
montage_queue_messages{queue="gpu"} 0
# TYPE process_cpu_seconds counter
process_cpu_seconds_total 5
"""

SCRAPE_AFTER = """\
# TYPE montage_http_request_duration_seconds histogram
montage_http_request_duration_seconds_bucket{le="0.05",method="GET",route="/api/v1/feed"} 50
montage_http_request_duration_seconds_bucket{le="0.25",method="GET",route="/api/v1/feed"} 100
montage_http_request_duration_seconds_bucket{le="2.5",method="GET",route="/api/v1/feed"} 110
montage_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/v1/feed"} 110
montage_http_request_duration_seconds_count{method="GET",route="/api/v1/feed"} 110
montage_http_request_duration_seconds_sum{method="GET",route="/api/v1/feed"} 27.5
montage_http_request_duration_seconds_created{method="GET",route="/api/v1/feed"} 1.7e9
# TYPE montage_jobs_finished counter
montage_jobs_finished_total{outcome="completed"} 6
montage_jobs_finished_total{outcome="failed"} 1
# TYPE montage_queue_messages gauge
montage_queue_messages{queue="gpu"} 3
# TYPE montage_websocket_connections gauge
montage_websocket_connections{source="uvicorn-1"} 1
# TYPE montage_moderation_decisions counter
montage_moderation_decisions_total{action="allow"} 0
# TYPE process_cpu_seconds counter
process_cpu_seconds_total 9
"""


def test_a_scrape_keeps_montage_series_and_drops_creation_timestamps():
    scrape = parse_scrape(SCRAPE_AFTER)

    assert scrape.available
    assert "process_cpu_seconds" not in scrape.families
    assert scrape.families["montage_jobs_finished"] == "counter"
    assert scrape.samples[("montage_jobs_finished_total", (("outcome", "failed"),))] == 1.0
    assert not [name for name, _ in scrape.samples if name.endswith("_created")]


@pytest.mark.parametrize(
    ("body", "error", "reason"),
    [
        (None, "HTTP 404: <h1>Not found</h1>", "HTTP 404"),
        ("<h1>Not found</h1>", None, "not Prometheus text"),
        ("# TYPE other_x counter\nother_x_total 1\n", None, "no montage_ series"),
    ],
)
def test_a_missing_or_foreign_metrics_page_is_reported_missing(body, error, reason):
    scrape = parse_scrape(body, error=error)

    assert not scrape.available
    assert reason in scrape.error


def test_series_fall_into_the_report_sections_by_name():
    assert category_of("montage_http_request_duration_seconds") == "request latency by route"
    assert category_of("montage_queue_messages") == "queue depth"
    assert category_of("montage_job_duration_seconds") == "job durations"
    assert category_of("montage_job_stage_duration_seconds") == "job durations"
    assert category_of("montage_jobs_finished") == "job outcomes"
    assert category_of("montage_jobs") == "job outcomes"
    assert category_of("montage_websocket_connections") == "websocket connections"
    assert category_of("montage_moderation_decisions") == "moderation decisions"
    assert category_of("montage_metrics_write_errors") == "other"


def test_sections_show_what_changed_during_the_load_only():
    sections = metric_sections(parse_scrape(SCRAPE_BEFORE), parse_scrape(SCRAPE_AFTER))

    (latency,) = sections["request latency by route"]
    assert latency.series == (
        "montage_http_request_duration_seconds{method=GET,route=/api/v1/feed}"
    )
    # 100 new requests: 50 under 50 ms, 50 more under 250 ms, 7.5 s in all. The 10 slow ones
    # from before the load must not leak into the quantiles.
    assert latency.text == "+100, mean 75.0ms, ~p50 50.0ms, ~p99 246.0ms"
    assert [(line.series, line.text) for line in sections["job outcomes"]] == [
        ("montage_jobs_finished_total{outcome=completed}", "+5"),
        ("montage_jobs_finished_total{outcome=failed}", "+1"),
    ]
    assert [line.text for line in sections["queue depth"]] == ["0 -> 3"]
    assert [line.text for line in sections["websocket connections"]] == ["absent -> 1"]
    # A counter that did not move is not a change.
    assert "moderation decisions" not in sections


def test_gauges_show_the_scrape_taken_during_the_load():
    during = parse_scrape(
        "# TYPE montage_queue_messages gauge\n"
        'montage_queue_messages{queue="gpu"} 7\n'
        "# TYPE montage_websocket_connections gauge\n"
        'montage_websocket_connections{source="uvicorn-1"} 2\n'
    )

    sections = metric_sections(parse_scrape(SCRAPE_BEFORE), parse_scrape(SCRAPE_AFTER), during)

    assert [line.text for line in sections["queue depth"]] == ["0 -> 7 -> 3"]
    assert [line.text for line in sections["websocket connections"]] == ["absent -> 2 -> 1"]
    # Counters are increases whatever was scraped in between.
    assert sections["job outcomes"][0].text == "+5"


def test_a_store_emptied_during_the_load_is_flagged_not_shown_as_a_decrease():
    # The cluster-wide series live in Redis: emptied meanwhile, they restart from zero.
    after = parse_scrape(
        "# TYPE montage_jobs_finished counter\n"
        'montage_jobs_finished_total{outcome="completed"} 0\n'
        "# TYPE montage_job_duration_seconds histogram\n"
        'montage_job_duration_seconds_bucket{le="5.0",outcome="completed"} 2\n'
        'montage_job_duration_seconds_bucket{le="+Inf",outcome="completed"} 3\n'
        'montage_job_duration_seconds_count{outcome="completed"} 3\n'
        'montage_job_duration_seconds_sum{outcome="completed"} 12.0\n'
    )
    before = parse_scrape(
        "# TYPE montage_jobs_finished counter\n"
        'montage_jobs_finished_total{outcome="completed"} 1\n'
        "# TYPE montage_job_duration_seconds histogram\n"
        'montage_job_duration_seconds_bucket{le="5.0",outcome="completed"} 0\n'
        'montage_job_duration_seconds_bucket{le="+Inf",outcome="completed"} 1\n'
        'montage_job_duration_seconds_count{outcome="completed"} 1\n'
        'montage_job_duration_seconds_sum{outcome="completed"} 30.0\n'
    )

    sections = metric_sections(before, after)

    (outcome,) = sections["job outcomes"]
    assert (outcome.text, outcome.reset) == ("went backwards (1 -> 0): reset meanwhile", True)
    # More observations than before, but the sum shrank: not an increase either.
    (duration,) = sections["job durations"]
    assert duration.reset
    assert duration.text == "went backwards (1 -> 3 observations): reset meanwhile"
    lines = render([], None, [], _facts(), {"REST": Scrapes(before, after)}).splitlines()
    assert any(line.startswith("  WARNING: counters went backwards") for line in lines)


def test_the_report_has_a_row_per_route_totals_load_and_metric_changes():
    rows, total = read_locust_stats(STATS_CSV)
    scrapes = {
        "REST": Scrapes(parse_scrape(SCRAPE_BEFORE), parse_scrape(SCRAPE_AFTER)),
        "WebSocket": Scrapes(
            parse_scrape(None, error="HTTP 500: oops"),
            parse_scrape(None, error="HTTP 500: oops"),
        ),
    }
    text = render(rows, total, read_locust_failures(FAILURES_CSV), _facts(), scrapes)
    lines = text.splitlines()

    feed = next(line for line in lines if "/api/v1/feed/for_you?cursor" in line)
    # 300 requests over the aggregate's 30 s window.
    assert feed.split() == ["GET", "/api/v1/feed/for_you?cursor", "300", "10.00", "48", "140", "3"]
    ws = next(line for line in lines if line.startswith("WS "))
    assert ws.split()[-5:] == ["2", "0.07", "13000", "14000", "1"]
    # HTTP routes by volume, WebSocket timings last.
    names = [line.split()[1] for line in lines if line.split()[:1] in (["GET"], ["POST"])]
    assert names == ["/api/v1/feed/for_you?cursor", "/api/v1/generations", "/api/v1/feed/following"]
    assert lines.index(feed) < lines.index(ws)
    assert "Overall: 306 requests over 30.0 s, 10.2 req/s, 4 failures (1.31%)" in lines
    assert (
        "Load average (1/5/15 min): before 1.00/0.50/0.25, after 3.50/1.50/0.75 on 2 CPUs" in lines
    )
    assert "      3 x GET /api/v1/feed/for_you?cursor: HTTPError('500 Server Error')" in lines
    assert "  WebSocket: missing (HTTP 500: oops)" in lines
    assert "  queue depth (REST):" in lines
    assert "    montage_queue_messages{queue=gpu}  0 -> 3" in lines
    assert "  moderation decisions: no change" in lines
    assert "Stopped by the request cap" not in text
    assert "WARNING" not in text


def test_the_report_says_when_the_request_cap_ended_the_run():
    rows, total = read_locust_stats(STATS_CSV)
    missing = parse_scrape(None, error="HTTP 404: <h1>Not found</h1>")

    text = render(rows, total, [], _facts(max_requests=300), {"REST": Scrapes(missing, missing)})

    assert "Stopped by the request cap (300)." in text.splitlines()
    assert "  REST: missing (HTTP 404: <h1>Not found</h1>)" in text.splitlines()
    assert "queue depth" not in text
