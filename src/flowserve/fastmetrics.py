"""Counters and histograms for the request path, without locks.

prometheus-client guards every increment with a lock (it must be thread
safe); flowserve observes from one event-loop thread, so a histogram here is a
list of bucket counts and a float. They are read at scrape time through a
collector, in Prometheus' normal exposition. Same ``labels(...)`` /
``inc`` / ``observe`` surface as prometheus-client's, so the two are
interchangeable (worker processes sharing metrics use prometheus-client's
file-backed ones instead).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence, Set

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are "less than or equal": the first bound >= value.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class FastCounter(Collector):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.children: dict[tuple[str, ...], CounterChild] = {}

    def labels(self, *values: str) -> CounterChild:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = CounterChild()
        return child

    def forget(self, first_values: Set[str]) -> None:
        """Drop every series whose first label value is one of these."""
        self.children = {k: c for k, c in self.children.items() if k[0] not in first_values}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self.children.items()):
            family.add_metric(values, child.value)
        yield family


class FastHistogram(Collector):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = tuple(buckets)
        self._les = [repr(float(b)) for b in self.bounds] + ["+Inf"]
        self.children: dict[tuple[str, ...], HistogramChild] = {}

    def labels(self, *values: str) -> HistogramChild:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = HistogramChild(self.bounds)
        return child

    def forget(self, first_values: Set[str]) -> None:
        """Drop every series whose first label value is one of these."""
        self.children = {k: c for k, c in self.children.items() if k[0] not in first_values}

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self.children.items()):
            cumulative: list[tuple[str, float]] = []
            total = 0
            for le, count in zip(self._les, child.counts, strict=True):
                total += count
                cumulative.append((le, float(total)))
            family.add_metric(list(values), cumulative, child.sum)
        yield family
