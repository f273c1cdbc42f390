"""Prometheus metrics: what an operator graphs and alerts on, cheap enough for the hot path.

One ``Metrics`` per app (its own ``CollectorRegistry``, so tests and several
apps in one process do not mix their numbers). With ``--workers N`` the
workers share their numbers through ``PROMETHEUS_MULTIPROC_DIR`` (the CLI
sets one up), and any worker's ``/metrics`` reports the sum of all. Labels are bounded: flows by
id, components by type, HTTP by route template (never the raw path), statuses
by error code. Observing a request or a run costs a few microseconds: label
children are looked up once and cached in a plain dict.

The job worker reports through ``set_queue_depth`` and ``job_finished``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from flowserve.fastmetrics import FastCounter, FastHistogram
from flowserve.outcome import RunOutcome

log = structlog.get_logger(__name__)

# Seconds: sub-millisecond API answers up to runs of several minutes.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip


class Metrics:
    def __init__(self, *, multiprocess_dir: str = "") -> None:
        # prometheus-client decides at import time, from PROMETHEUS_MULTIPROC_DIR,
        # whether values live in shared files; here we only choose how to collect them.
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Hot-path counters and histograms are lock-free in a single process; with
        # shared worker metrics they are prometheus-client's file-backed ones.
        self.http_duration = self._histogram(
            "flowserve_http_request_duration_seconds",
            "HTTP request latency until the response is complete (streams: until the end)",
            ("method", "route", "status"),
        )
        self.runs = self._counter(
            "flowserve_runs", "Flow runs by flow id and outcome", ("flow", "status")
        )
        self.run_duration = self._histogram(
            "flowserve_run_duration_seconds", "Flow run latency", ("flow",)
        )
        self.component_duration = self._histogram(
            "flowserve_component_duration_seconds",
            "Component latency within runs, by component type",
            ("component",),
        )
        self.tokens = self._counter("flowserve_tokens", "LLM tokens used by runs", ("flow", "kind"))
        self.rejected = self._counter(
            "flowserve_runs_rejected", "Runs refused before starting, by reason", ("reason",)
        )
        self.in_flight = Gauge(
            "flowserve_runs_in_flight",
            "Runs executing on this instance now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queue_depth = Gauge(
            "flowserve_queue_depth",
            "Jobs waiting in a queue",
            ("queue",),
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.jobs = self._counter(
            "flowserve_jobs", "Background jobs by kind and outcome", ("kind", "outcome")
        )
        self.job_duration = self._histogram(
            "flowserve_job_duration_seconds", "Background job latency", ("kind",)
        )
        self._http: dict[tuple[str, str, int], Any] = {}
        self._components: dict[str, Any] = {}
        self._runs: dict[tuple[str, str], tuple[Any, Any]] = {}

    def _counter(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> Any:
        if self.multiprocess_dir:
            return Counter(name, documentation, labelnames, registry=self.registry)
        counter = FastCounter(f"{name}_total", documentation, labelnames)
        self.registry.register(counter)
        return counter

    def _histogram(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> Any:
        if self.multiprocess_dir:
            return Histogram(
                name, documentation, labelnames, buckets=LATENCY_BUCKETS, registry=self.registry
            )
        histogram = FastHistogram(name, documentation, labelnames, LATENCY_BUCKETS)
        self.registry.register(histogram)
        return histogram

    # -- HTTP (called by the request middleware, once per request) --------------------------

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        child = self._http.get(key)
        if child is None:
            child = self._http[key] = self.http_duration.labels(method, route, str(status))
        child.observe(seconds)

    # -- runs (called by the runner) -----------------------------------------------------------

    def forget_flows(self, flow_ids: list[str]) -> None:
        """Drop the series of deleted flows, so flow churn does not grow memory and the
        scrape without bound. (With shared worker metrics the series live in the workers'
        files and stay until restart.)"""
        gone = set(flow_ids)
        self._runs = {key: kids for key, kids in self._runs.items() if key[0] not in gone}
        for metric in (self.runs, self.run_duration, self.tokens):
            if isinstance(metric, FastCounter | FastHistogram):
                metric.forget(gone)

    def run_finished(self, outcome: RunOutcome) -> None:
        key = (outcome.flow_id, outcome.status)
        children = self._runs.get(key)
        if children is None:
            children = self._runs[key] = (
                self.runs.labels(*key),
                self.run_duration.labels(outcome.flow_id),
            )
        children[0].inc()
        children[1].observe(outcome.duration)
        for component, seconds in outcome.component_durations():
            child = self._components.get(component)
            if child is None:
                child = self._components[component] = self.component_duration.labels(component)
            child.observe(seconds)
        usage = outcome.usage
        if usage is not None:
            if usage.input_tokens:
                self.tokens.labels(outcome.flow_id, "input").inc(usage.input_tokens)
            if usage.output_tokens:
                self.tokens.labels(outcome.flow_id, "output").inc(usage.output_tokens)

    def run_rejected(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def track_in_flight(self, read: Callable[[], float]) -> None:
        """Report the in-flight gauge from ``read()`` at scrape time (nothing on the hot path).

        Not with several workers: each must then count into the shared gauge itself
        (``shared_in_flight``).
        """
        if not self.multiprocess_dir:
            self.in_flight.set_function(read)

    @property
    def shared_in_flight(self) -> Gauge | None:
        """The gauge run admission must inc/dec when workers share metrics, else None."""
        return self.in_flight if self.multiprocess_dir else None

    # -- jobs (hooks for the job worker) --------------------------------------------------------

    def set_queue_depth(self, queue: str, depth: int) -> None:
        self.queue_depth.labels(queue).set(depth)

    def job_finished(self, kind: str, outcome: str, seconds: float) -> None:
        """``outcome``: "success", "retry", "failed" (gave up) or "abandoned" (handed back)."""
        self.jobs.labels(kind, outcome).inc()
        self.job_duration.labels(kind).observe(seconds)

    # -- exposition -----------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        if not self.multiprocess_dir:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """This process is leaving: drop its share of the live gauges."""
        if self.multiprocess_dir:
            mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


class RunObservers:
    """Fans a run's outcome out to every observer (metrics, tracing).

    An observer that fails is logged and skipped: it never changes a run's result.
    """

    __slots__ = ("_observers",)

    def __init__(self, *observers: Callable[[RunOutcome], None]) -> None:
        self._observers = observers

    def __call__(self, outcome: RunOutcome) -> None:
        for observe in self._observers:
            try:
                observe(outcome)
            except Exception:
                log.exception("run_observer_failed", observer=repr(observe))
