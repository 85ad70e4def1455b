"""EVENTS_BACKEND=clickhouse end to end: the SDK capture endpoint writes into ClickHouse (chdb in
process), and the results query, the exposure query and the timeseries backfill (through the real
worker) are computed there; each equals the embedded engine's answer for the same events stored in
SQL. /_health reports ClickHouse, and an unreachable ClickHouse answers 503, never 500."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from temporalio.client import Client

from api.app import create_app
from db.bootstrap import Credentials
from domain.metric_engine import analysis_days
from settings import Settings
from tests.api.test_timeseries import TZ, experiment_with_traffic, recalculate, series, started, traffic
from tests.conftest import make_settings
from tests.support.analysis import Row, one_shot, store_events
from tests.support.api_client import ApiClient
from tests.support.clickhouse import assert_same, new_database
from workflows.timeseries_names import recalculation_workflow_id

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def settings(tmp_path: Path, database_url: str, temporal_client: Client, clickhouse_url: str) -> Settings:
    """The suite's settings, with events in a ClickHouse database of this test's own."""
    ch = new_database(clickhouse_url)
    ch.close()
    base = make_settings(tmp_path, database_url, temporal_client)
    return base.with_overrides(
        events_backend="clickhouse", clickhouse_url=clickhouse_url, clickhouse_database=ch.database
    )


def sdk_event(row: Row) -> dict[str, Any]:
    name, user, when, props = row
    return {
        "event": name,
        "distinct_id": user,
        "timestamp": when.isoformat(),
        "properties": props,
        "uuid": str(uuid.uuid4()),
    }


async def capture(api: ApiClient, credentials: Credentials, rows: list[Row]) -> None:
    """Through the SDK endpoint into ClickHouse, and straight into SQL for the embedded engine."""
    for start in range(0, len(rows), 50):
        body = {
            "api_key": credentials.project_api_token,
            "batch": [sdk_event(r) for r in rows[start : start + 50]],
        }
        r = await api.http.post("/batch/", json=body)
        assert r.status_code == 200, r.text


async def test_results_and_exposures_come_from_clickhouse_and_equal_the_embedded_engine(
    api: ApiClient, settings: Settings, credentials: Credentials
) -> None:
    exp = await experiment_with_traffic(api, settings, days=3)  # the SQL copy, for the embedded engine
    start = datetime.fromisoformat(exp["start_date"].replace("Z", "+00:00"))
    await capture(api, credentials, traffic(start))
    for metric in exp["metrics"]:
        r = await api.post(
            api.project("query/"),
            {"query": {"kind": "ExperimentQuery", "experiment_id": exp["id"], "metric": metric}},
        )
        assert r.status_code == 200, r.text
        assert r.json()["baseline"]["number_of_samples"] > 0
        assert_same(await one_shot(settings, exp["id"], metric, datetime.now(UTC)), r.json())
    exposures = await api.post(
        api.project("query/"), {"query": {"kind": "ExperimentExposureQuery", "experiment_id": exp["id"]}}
    )
    assert exposures.status_code == 200, exposures.text
    totals = exposures.json()["total_exposures"]
    assert totals["$multiple"] == 5 and sum(totals.values()) == 40
    health = await api.get("/_health")
    assert health.status_code == 200 and health.json()["clickhouse"] == "ok"


async def backfill_equals_the_embedded_engine(
    api: ApiClient, settings: Settings, temporal_client: Client, exp: dict[str, Any], metric: dict[str, Any]
) -> dict[str, Any]:
    """Backfill `metric` through the worker (ClickHouse); every day equals a one-shot analysis of the
    SQL copy by the embedded engine. Returns the last day's result."""
    body = (await recalculate(api, exp, metric)).json()
    await temporal_client.get_workflow_handle(recalculation_workflow_id(body["id"])).result()
    out = await series(api, exp, metric)
    assert out["status"] == "completed"
    start = datetime.fromisoformat(exp["start_date"].replace("Z", "+00:00"))
    expected: dict[str, Any] = {}
    for day in analysis_days(start, None, datetime.now(UTC), TZ):
        expected = await one_shot(settings, exp["id"], metric, day.query_to)
        assert_same(expected, out["timeseries"][day.day.isoformat()])
    return expected


async def test_timeseries_days_are_computed_in_clickhouse(
    api: ApiClient, settings: Settings, credentials: Credentials, temporal_client: Client
) -> None:
    exp = await experiment_with_traffic(api, settings, days=3)
    start = datetime.fromisoformat(exp["start_date"].replace("Z", "+00:00"))
    await capture(api, credentials, traffic(start))
    for metric in exp["metrics"]:
        await backfill_equals_the_embedded_engine(api, settings, temporal_client, exp, metric)


async def test_cuped_days_are_computed_in_clickhouse(
    api: ApiClient, settings: Settings, credentials: Credentials, temporal_client: Client
) -> None:
    """CUPED on: the covariate reads purchases before each exposure, some before the start."""
    exp = await experiment_with_traffic(api, settings, days=3)
    start = datetime.fromisoformat(exp["start_date"].replace("Z", "+00:00"))
    before: list[Row] = [
        (name, f"u{i}", start + timedelta(hours=i - 30), {"amount": i % 5})
        for i in range(40)
        for name in ("cart", "purchase")
    ]
    await store_events(settings, api.project_id, before)
    await capture(api, credentials, traffic(start) + before)
    on = {"method": "frequentist", "cuped": {"enabled": True, "lookback_days": 2}}
    r = await api.patch(api.project(f"experiments/{exp['id']}/"), {"stats_config": on})
    assert r.status_code == 200, r.text
    for metric in r.json()["metrics"]:
        last = await backfill_equals_the_embedded_engine(api, settings, temporal_client, exp, metric)
        assert last["baseline"]["covariate_sum"] > 0 and "srm" in last


async def test_an_unreachable_clickhouse_is_a_503(
    settings: Settings, credentials: Credentials, temporal_client: Client
) -> None:
    # Nothing listens on this loopback port: every call fails to connect.
    down = settings.with_overrides(clickhouse_url="http://flagship:secret@127.0.0.1:9")
    app = create_app(down, temporal_client=temporal_client)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            api = ApiClient(http, credentials.personal_api_key, credentials.project_id)
            health = await api.get("/_health")
            assert health.status_code == 503 and health.json()["clickhouse"].startswith("unavailable")
            assert health.json()["database"] == "ok"
            row: Row = ("purchase", "u", started(1), {})
            body = {"api_key": credentials.project_api_token, "batch": [sdk_event(row)]}
            captured = await http.post("/batch/", json=body)
            assert captured.status_code == 503 and captured.json()["code"] == "service_unavailable"
            exp = await api.post(
                api.project("experiments/"),
                {"name": "x", "feature_flag_key": "down", "start_date": started(1).isoformat()},
            )
            metric = {
                "kind": "ExperimentMetric",
                "metric_type": "mean",
                "source": {"kind": "EventsNode", "event": "purchase"},
            }
            query = {"kind": "ExperimentQuery", "experiment_id": exp.json()["id"], "metric": metric}
            r = await api.post(api.project("query/"), {"query": query})
            assert (
                r.status_code == 503
                and r.json()["detail"] == "The events store is unavailable. Try again shortly."
            )
