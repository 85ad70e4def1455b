"""The hot-path counters and histograms expose exactly what prometheus_client's own would."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.errors import ApiError, RawError, not_found, service_unavailable
from api.instrumentation import transition_outcome
from observability.hot import HotCounter, HotHistogram
from observability.metrics import LATENCY_BUCKETS

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(registry: CollectorRegistry) -> Samples:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_hot_metrics_match_prometheus_client() -> None:
    hot, reference = CollectorRegistry(), CollectorRegistry()
    hot_counter = HotCounter("t_requests", "doc", ["route"])
    hot_histogram = HotHistogram("t_duration_seconds", "doc", ["route"], LATENCY_BUCKETS)
    hot.register(hot_counter)
    hot.register(hot_histogram)
    counter = Counter("t_requests", "doc", ["route"], registry=reference)
    histogram = Histogram("t_duration_seconds", "doc", ["route"], buckets=LATENCY_BUCKETS, registry=reference)
    observations = [0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.2, 2.5, 11.0, 10.0]
    for n, value in enumerate(observations):
        route = ("/flags", "/batch")[n % 2]
        hot_counter.labels(route).inc()
        counter.labels(route).inc()
        hot_histogram.labels(route).observe(value)
        histogram.labels(route).observe(value)
    assert samples(hot) == samples(reference)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (
            ApiError(400, "validation_error", "invalid_input", "Experiment has already been launched."),
            "rejected",
        ),
        (ApiError(409, "invalid_request", "conflict", "Retry."), "conflict"),
        (RawError(409, {"code": "approval_required", "change_request_id": "cr-1"}), "approval_required"),
        (RawError(400, {"code": "policy_conflict", "error": "…"}), "rejected"),
        (not_found(), "not_found"),
        (service_unavailable("No worker."), "unavailable"),
    ],
)
def test_transition_outcomes(error: ApiError | RawError, outcome: str) -> None:
    assert transition_outcome(error) == outcome
