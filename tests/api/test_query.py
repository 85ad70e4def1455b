"""`POST /api/projects/{id}/query/` for ExperimentQuery and ExperimentExposureQuery, both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from settings import Settings
from tests.support.analysis import Row, one_shot, store_events
from tests.support.api_client import ApiClient
from tests.support.experiments import create_experiment

pytestmark = pytest.mark.usefixtures("worker")

MEAN = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
}


def flag_called(user: str, variant: str, when: datetime) -> Row:
    return ("$feature_flag_called", user, when, {"$feature_flag": "q-exp", "$feature_flag_response": variant})


async def experiment(api: ApiClient, settings: Settings) -> tuple[dict[str, Any], datetime]:
    # Midnight (UTC, the project's zone): the first two exposures fall on the first day whatever the
    # hour the test runs at (from 22:00 on, start + 2 h used to be the next day).
    start = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    exp = await create_experiment(api, feature_flag_key="q-exp", start_date=start.isoformat(), metrics=[MEAN])
    h = timedelta(hours=1)
    rows = [
        flag_called("alice", "control", start + h),
        flag_called("bob", "control", start + 2 * h),
        flag_called("carol", "test", start + 3 * h),
        flag_called("dave", "test", start + 26 * h),  # second day
        flag_called("dave", "control", start + 27 * h),  # dave: `$multiple`
        flag_called("erin", "control", start - h),  # before the start: not an exposure
        ("purchase", "alice", start + 4 * h, {"amount": 10}),
        ("purchase", "alice", start + 5 * h, {"amount": 5}),
        ("purchase", "carol", start + 6 * h, {"amount": 8}),
        ("purchase", "dave", start + 28 * h, {"amount": 100}),
    ]
    await store_events(settings, api.project_id, rows)
    return exp, start


async def query(
    api: ApiClient, body: dict[str, Any], *, prefix: str = "projects", key: str | None = None
) -> Any:
    return await api.post(
        f"/api/{prefix}/{api.project_id}/query/", {"query": body, "refresh": "blocking"}, key=key
    )


async def test_experiment_query_returns_current_results(api: ApiClient, settings: Settings) -> None:
    exp, _ = await experiment(api, settings)
    metric = exp["metrics"][0]
    r = await query(api, {"kind": "ExperimentQuery", "experiment_id": exp["id"], "metric": metric})
    assert r.status_code == 200, r.text
    body = r.json()
    # control: alice 15, bob 0 (dave is `$multiple`); test: carol 8.
    assert (body["baseline"]["key"], body["baseline"]["number_of_samples"], body["baseline"]["sum"]) == (
        "control",
        2,
        15.0,
    )
    assert body["baseline"]["sum_squares"] == 225.0
    test = body["variant_results"][0]
    assert (test["key"], test["number_of_samples"], test["sum"], test["method"]) == (
        "test",
        1,
        8.0,
        "bayesian",
    )
    assert test["validation_failures"] == ["not-enough-exposures"] and test["chance_to_win"] is None
    assert body == await one_shot(settings, exp["id"], metric, datetime.now(UTC))
    alias = await query(
        api, {"kind": "ExperimentQuery", "experiment_id": exp["id"], "metric": metric}, prefix="environments"
    )
    assert alias.status_code == 200 and alias.json() == body


async def test_exposure_query_shape(api: ApiClient, settings: Settings) -> None:
    exp, start = await experiment(api, settings)
    r = await query(
        api,
        {
            "kind": "ExperimentExposureQuery",
            "experiment_id": exp["id"],
            "experiment_name": exp["name"],
            "exposure_criteria": exp["exposure_criteria"],
            "feature_flag": exp["feature_flag"],
            "start_date": exp["start_date"],
            "end_date": exp["end_date"],
            "holdout": exp["holdout"],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "ExperimentExposureQuery"
    days = [
        (start.date() + timedelta(days=i)).isoformat()
        for i in range((datetime.now(UTC).date() - start.date()).days + 1)
    ]
    by_variant = {s["variant"]: s for s in body["timeseries"]}
    assert [s["variant"] for s in body["timeseries"]] == ["control", "test", "$multiple"]
    assert all(s["days"] == days for s in body["timeseries"])
    assert (
        by_variant["control"]["exposure_counts"][0] == 2 and by_variant["control"]["exposure_counts"][-1] == 2
    )
    assert by_variant["$multiple"]["exposure_counts"][-1] == 1
    assert body["total_exposures"] == {"control": 2, "test": 1, "$multiple": 1}
    assert (
        body["date_range"]["date_from"].startswith(start.date().isoformat())
        and body["date_range"]["date_to"] is None
    )


async def test_query_scopes_and_errors(api: ApiClient, settings: Settings) -> None:
    exp, _ = await experiment(api, settings)
    body = {"kind": "ExperimentQuery", "experiment_id": exp["id"], "metric": exp["metrics"][0]}
    for scopes, status in ((["query:read"], 200), (["experiment:read"], 200), (["feature_flag:read"], 403)):
        key = (await api.post("/api/personal_api_keys/", {"label": scopes[0], "scopes": scopes})).json()[
            "value"
        ]
        r = await query(api, body, key=key)
        assert r.status_code == status, (scopes, r.text)
    assert r.json()["detail"] == "API key missing required scope 'query:read'"
    assert (await query(api, {**body, "experiment_id": 999999})).status_code == 404
    bad = await query(
        api, {**body, "metric": {**MEAN, "source": {"kind": "EventsNode", "event": "x", "math": "hogql"}}}
    )
    assert bad.status_code == 400 and "hogql" in bad.json()["detail"]
    unknown = await query(api, {"kind": "TrendsQuery"})
    assert unknown.status_code == 400 and "TrendsQuery" in unknown.json()["detail"]
    draft = await create_experiment(api, feature_flag_key="q-draft", metrics=[MEAN])
    empty = await query(api, {"kind": "ExperimentExposureQuery", "experiment_id": draft["id"]})
    assert empty.json() == {
        "kind": "ExperimentExposureQuery",
        "timeseries": [],
        "total_exposures": {},
        "date_range": {"date_from": None, "date_to": None, "explicitDate": True},
    }
    not_started = await query(api, {"kind": "ExperimentQuery", "experiment_id": draft["id"], "metric": MEAN})
    assert (
        not_started.status_code == 400
        and not_started.json()["detail"] == "Experiment has not been started yet"
    )
