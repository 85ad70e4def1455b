"""Counters and histograms cheap enough for the /flags hot path.

prometheus_client takes a lock per increment and walks the buckets per observation, a few µs on
this hardware per call; at thousands of /flags answers per second and a few metrics per answer
that is a measurable share of the request. These keep plain numbers instead (a bisect and two
additions per observation) and turn them into standard families when scraped. They are updated
only from the event-loop thread (the API's request path and its /metrics route share it), so no
lock is needed.

With prometheus_client's multiprocess mode on (several API processes, see metrics.py) values must
live in its shared files, so `counter()`/`histogram()` return ordinary prometheus_client metrics
then: same names, same labels, same exposition.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class CounterChild(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class HistogramChild(Protocol):
    def observe(self, amount: float) -> None: ...


class CounterLike(Protocol):
    def labels(self, *values: str) -> CounterChild: ...


class HistogramLike(Protocol):
    def labels(self, *values: str) -> HistogramChild: ...


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class _Buckets:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.sum += amount
        self.counts[bisect_left(self.bounds, amount)] += 1

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


class HotCounter(Collector):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, list(labelnames)
        self._children: dict[tuple[str, ...], _Count] = {}

    def labels(self, *values: str) -> _Count:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _Count()
        return child

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.value)
        yield family


class HotHistogram(Collector):
    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, list(labelnames)
        self.bounds = tuple(sorted(float(b) for b in buckets if b != float("inf")))
        self._children: dict[tuple[str, ...], _Buckets] = {}

    def labels(self, *values: str) -> _Buckets:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = _Buckets(self.bounds)
        return child

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self._children.items()):
            family.add_metric(list(values), child.cumulative(), child.sum)
        yield family


def recorder(
    count: CounterChild, duration: HistogramChild, extra: CounterChild | None = None
) -> Callable[[float], None]:
    """One call per request for a request counter, its latency histogram and an optional extra
    counter: with the hot types it updates their numbers inline (no method call per metric)."""
    if isinstance(count, _Count) and isinstance(duration, _Buckets) and isinstance(extra, _Count | None):
        counts, bounds = duration.counts, duration.bounds

        def record(elapsed: float) -> None:
            count.value += 1
            duration.sum += elapsed
            counts[bisect_left(bounds, elapsed)] += 1
            if extra is not None:
                extra.value += 1

        return record

    def record_any(elapsed: float) -> None:
        count.inc()
        duration.observe(elapsed)
        if extra is not None:
            extra.inc()

    return record_any


def counter(name: str, documentation: str, labelnames: Sequence[str]) -> CounterLike:
    if os.environ.get(MULTIPROC_ENV):
        return Counter(name, documentation, labelnames)
    metric = HotCounter(name, documentation, labelnames)
    REGISTRY.register(metric)
    return metric


def histogram(
    name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
) -> HistogramLike:
    if os.environ.get(MULTIPROC_ENV):
        return Histogram(name, documentation, labelnames, buckets=buckets)
    metric = HotHistogram(name, documentation, labelnames, buckets)
    REGISTRY.register(metric)
    return metric
