"""The lock-free histogram exposes the same numbers prometheus-client's would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from flowserve.fastmetrics import FastCounter, FastHistogram

BUCKETS = (0.1, 0.5, 1.0)
VALUES = (0.05, 0.1, 0.3, 0.5, 0.7, 1.0, 5.0)


def exposition_lines(registry: CollectorRegistry) -> set[str]:
    return {
        line
        for line in generate_latest(registry).decode().splitlines()
        if line and not line.startswith("#") and "_created" not in line
    }


def test_fast_histogram_matches_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = FastHistogram("latency_seconds", "Latency", ("route",), BUCKETS)
    ours.register(fast)
    reference = Histogram(
        "latency_seconds", "Latency", ("route",), buckets=BUCKETS, registry=theirs
    )
    for value in VALUES:
        fast.labels("/a").observe(value)
        reference.labels("/a").observe(value)
    assert exposition_lines(ours) == exposition_lines(theirs)
    # A value equal to a bound counts in that bucket ("less than or equal").
    assert 'latency_seconds_bucket{le="0.1",route="/a"} 2.0' in exposition_lines(ours)


def test_fast_counter_exposes_a_total() -> None:
    registry = CollectorRegistry()
    counter = FastCounter("flowserve_runs_total", "Runs", ("flow", "status"))
    registry.register(counter)
    counter.labels("f", "success").inc()
    counter.labels("f", "success").inc(2)
    assert 'flowserve_runs_total{flow="f",status="success"} 3.0' in exposition_lines(registry)
