"""Sequential testing, CUPED, corrections and SRM through the REST API, on SQLite and PostgreSQL:
the pre-exposure window loaded from before the start, the 400s, and no stale timeseries rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client

from settings import Settings
from tests.api import test_timeseries as timeseries
from tests.support.analysis import Row, one_shot, store_events, wait_for_recalculation
from tests.support.api_client import ApiClient
from tests.support.experiments import create_experiment
from workflows.timeseries_names import recalculation_workflow_id

pytestmark = pytest.mark.usefixtures("worker")

MEAN = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
}
FLAG = "stats-exp"
H = timedelta(hours=1)


def flag_called(user: str, variant: str, when: datetime) -> Row:
    return ("$feature_flag_called", user, when, {"$feature_flag": FLAG, "$feature_flag_response": variant})


def purchase(user: str, when: datetime, amount: float) -> Row:
    return ("purchase", user, when, {"amount": amount})


async def launched(api: ApiClient, stats_config: dict[str, Any]) -> tuple[dict[str, Any], datetime]:
    start = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    exp = await create_experiment(
        api, feature_flag_key=FLAG, start_date=start.isoformat(), metrics=[MEAN], stats_config=stats_config
    )
    return exp, start


async def query(api: ApiClient, exp: dict[str, Any]) -> dict[str, Any]:
    body = {"kind": "ExperimentQuery", "experiment_id": exp["id"], "metric": exp["metrics"][0]}
    r = await api.post(api.project("query/"), {"query": body})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_cuped_reads_the_lookback_before_the_experiment_start(
    api: ApiClient, settings: Settings
) -> None:
    exp, start = await launched(
        api, {"method": "frequentist", "cuped": {"enabled": True, "lookback_days": 3}}
    )
    rows = [
        flag_called("alice", "control", start + H),
        purchase("alice", start - 60 * H, 4),  # 2.5 days before the start: inside alice's 3 days
        purchase("alice", start - 80 * H, 50),  # older than 3 days before her exposure
        purchase("alice", start + 2 * H, 10),  # the metric itself
        flag_called("bob", "control", start + 30 * H),
        purchase("bob", start + 5 * H, 7),  # after the start, before bob's exposure
        purchase("bob", start - 50 * H, 1000),  # loaded (3 days before the start) but before bob's window
        flag_called("carol", "test", start + 3 * H),
        purchase("carol", start - H, 2),
        purchase("carol", start + 4 * H, 8),
    ]
    await store_events(settings, api.project_id, rows)
    body = await query(api, exp)
    baseline, [test] = body["baseline"], body["variant_results"]
    # control: alice (y 10, x 4), bob (y 0, x 7); test: carol (y 8, x 2)
    assert (
        baseline["covariate_sum"],
        baseline["covariate_sum_squares"],
        baseline["covariate_sum_product"],
    ) == (
        11.0,
        65.0,
        40.0,
    )
    assert (test["covariate_sum"], test["covariate_sum_squares"], test["covariate_sum_product"]) == (
        2.0,
        4.0,
        16.0,
    )
    assert {"adjusted_p_value", "adjusted_significant", "variance_reduction"} <= set(test)
    assert body["srm"]["observed"] == {"control": 2, "test": 1}
    assert body["srm"]["expected"] == pytest.approx({"control": 1.5, "test": 1.5})
    assert body == await one_shot(settings, exp["id"], exp["metrics"][0], datetime.now(UTC))


@pytest.mark.parametrize(
    ("stats_config", "detail"),
    [
        (
            {"method": "frequentist", "frequentist": {"sequential_tuning_parameter": 0}},
            "Invalid sequential_tuning_parameter: '0'. Must be a number between 1 and 1000000000",
        ),
        (
            {"multiple_comparison_correction": "bonferroni"},
            "Invalid multiple_comparison_correction: 'bonferroni'. Must be one of: benjamini_hochberg, holm, none",
        ),
        (
            {"cuped": {"lookback_days": 90}},
            "Invalid cuped.lookback_days: '90'. Must be an integer between 1 and 30",
        ),
    ],
)
async def test_bad_settings_are_a_400_on_create_and_patch(
    api: ApiClient, stats_config: dict[str, Any], detail: str
) -> None:
    expected = {"type": "validation_error", "code": "invalid_input", "detail": detail, "attr": "stats_config"}
    r = await api.post(
        api.project("experiments/"),
        {"name": "x", "feature_flag_key": "bad-stats", "stats_config": stats_config},
    )
    assert r.status_code == 400 and r.json() == expected, r.text
    exp = await create_experiment(api, feature_flag_key="good-stats")
    r = await api.patch(api.project(f"experiments/{exp['id']}/"), {"stats_config": stats_config})
    assert r.status_code == 400 and r.json() == expected, r.text


async def recalculate(api: ApiClient, exp: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    r = await timeseries.recalculate(api, exp, {**exp["metrics"][0], "fingerprint": fingerprint})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def series(api: ApiClient, exp: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    return await timeseries.series(api, exp, {**exp["metrics"][0], "fingerprint": fingerprint})


async def test_turning_cuped_on_never_serves_the_old_series(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    exp, start = await launched(api, {"method": "frequentist"})
    rows = [flag_called(f"u{i}", "control" if i % 2 else "test", start + i * H) for i in range(40)]
    rows += [purchase(f"u{i}", start + (i - 10) * H, i % 5) for i in range(40)]
    rows += [purchase(f"u{i}", start + (i + 2) * H, i % 7) for i in range(40)]
    await store_events(settings, api.project_id, rows)
    old = exp["metrics"][0]["fingerprint"]
    first = await recalculate(api, exp, old)
    await temporal_client.get_workflow_handle(recalculation_workflow_id(first["id"])).result()
    before = await series(api, exp, old)
    assert before["status"] == "completed"
    assert all(
        day["variant_results"][0]["variance_reduction"] is None for day in before["timeseries"].values()
    )

    on = {"method": "frequentist", "cuped": {"enabled": True}, "multiple_comparison_correction": "holm"}
    r = await api.patch(api.project(f"experiments/{exp['id']}/"), {"stats_config": on})
    assert r.status_code == 200, r.text
    exp = r.json()
    new = exp["metrics"][0]["fingerprint"]
    assert new != old
    pending = await series(api, exp, new)
    assert pending["status"] == "pending" and set(pending["timeseries"].values()) == {None}

    stale = await recalculate(api, exp, old)  # a client still holding the old fingerprint
    await wait_for_recalculation(settings, stale["id"], "failed")
    assert (await series(api, exp, new))["status"] == "pending"

    fresh = await recalculate(api, exp, new)
    await temporal_client.get_workflow_handle(recalculation_workflow_id(fresh["id"])).result()
    after = await series(api, exp, new)
    assert after["status"] == "completed"
    last = after["timeseries"][max(after["timeseries"])]
    assert last["baseline"]["covariate_sum"] is not None and "srm" in last
    # The project is in UTC: the last day's row is the analysis as of the next midnight.
    query_to = datetime.fromisoformat(max(after["timeseries"])).replace(tzinfo=UTC) + timedelta(days=1)
    assert last == await one_shot(settings, exp["id"], exp["metrics"][0], query_to)
