"""`GET /metrics`: valid Prometheus text, and its counters move with flags, capture and launches."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from db.bootstrap import Credentials
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment

pytestmark = pytest.mark.usefixtures("worker")

LAUNCH_ROUTE = "/api/projects/{project_id}/experiments/{experiment_id}/launch/"


async def scrape(api: ApiClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = await api.http.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_flag_evaluations_and_http_requests_are_counted(
    api: ApiClient, credentials: Credentials
) -> None:
    before = await scrape(api)
    body = {"api_key": credentials.project_api_token, "distinct_id": "user-1"}
    assert (await api.http.post("/flags/?v=2", json=body)).status_code == 200
    assert (
        await api.http.post("/flags/?v=2", json={"api_key": "phc_unknown", "distinct_id": "u"})
    ).status_code == 401
    after = await scrape(api)

    assert delta(before, after, "flagship_flag_evaluations_total", endpoint="flags", outcome="evaluated") == 1
    assert delta(before, after, "flagship_flag_evaluations_total", endpoint="flags", outcome="rejected") == 1
    assert (
        delta(before, after, "flagship_http_requests_total", method="POST", route="/flags", status="200") == 1
    )
    assert (
        delta(before, after, "flagship_http_requests_total", method="POST", route="/flags", status="401") == 1
    )
    assert (
        delta(before, after, "flagship_http_request_duration_seconds_count", method="POST", route="/flags")
        == 2
    )


async def test_captured_events_are_counted(api: ApiClient, credentials: Credentials) -> None:
    before = await scrape(api)
    events = [{"event": "$pageview", "distinct_id": f"user-{n}", "properties": {}} for n in range(3)]
    r = await api.http.post("/batch/", json={"api_key": credentials.project_api_token, "batch": events})
    assert r.status_code == 200, r.text
    r = await api.http.post("/batch/", json={"api_key": "phc_unknown", "batch": events})
    assert r.status_code == 401
    r = await api.http.post("/batch/", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    after = await scrape(api)

    assert delta(before, after, "flagship_events_ingested_total") == 3
    assert delta(before, after, "flagship_capture_batches_total", outcome="accepted") == 1
    assert delta(before, after, "flagship_capture_batches_total", outcome="unauthorized") == 1
    assert delta(before, after, "flagship_capture_batches_total", outcome="invalid") == 1
    assert (
        delta(before, after, "flagship_http_requests_total", method="POST", route="/batch", status="200") == 1
    )


async def test_launches_are_counted_by_outcome(api: ApiClient) -> None:
    exp = await create_experiment(api)
    before = await scrape(api)
    assert (await action(api, exp["id"], "launch")).status_code == 200
    refused = await action(api, exp["id"], "launch")
    assert refused.status_code == 400, refused.text  # "Experiment has already been launched."
    after = await scrape(api)

    assert (
        delta(before, after, "flagship_experiment_transitions_total", operation="launch", outcome="accepted")
        == 1
    )
    assert (
        delta(before, after, "flagship_experiment_transitions_total", operation="launch", outcome="rejected")
        == 1
    )
    # The route template, never the raw path with its ids.
    assert (
        delta(before, after, "flagship_http_requests_total", method="POST", route=LAUNCH_ROUTE, status="200")
        == 1
    )
    assert (
        delta(before, after, "flagship_http_requests_total", method="POST", route=LAUNCH_ROUTE, status="400")
        == 1
    )
    # The worker side (same process here): the activity ran once, the refusal never reached it.
    labels = {"operation": "launch", "via": "rest", "outcome": "accepted"}
    assert delta(before, after, "flagship_workflow_transitions_total", **labels) == 1
    activity = {"activity": "experiment.transition", "outcome": "completed"}
    assert delta(before, after, "flagship_activity_duration_seconds_count", **activity) == 1


async def test_labels_never_carry_ids(api: ApiClient) -> None:
    exp = await create_experiment(api)
    await action(api, exp["id"], "launch")
    await api.get(api.project(f"experiments/{exp['id']}/"))
    await api.get("/no/such/path/12345")
    samples = await scrape(api)
    routes = {dict(labels).get("route") for name, labels in samples if name.startswith("flagship_http_")}
    routes.discard(None)
    assert routes, "no HTTP samples"
    for route in routes:
        assert route is not None
        assert not any(part.isdigit() for part in route.split("/")), route
    assert "unmatched" in routes
