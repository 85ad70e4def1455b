"""Timeseries recalculation through REST and the real worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlmodel import select
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow

from api.app import create_app
from db.engine import make_sessionmaker
from db.tables import ExperimentMetricResult
from domain.metric_engine import analysis_days
from domain.timeseries_messages import BackfillResult, DailyInput, DailySummary
from settings import Settings
from tests.support.analysis import (
    Row,
    database,
    execute,
    one_shot,
    set_project,
    store_events,
    wait_for_recalculation,
)
from tests.support.api_client import ApiClient
from tests.support.experiments import create_experiment
from worker import build_worker
from workflows.timeseries_client import ensure_daily_schedule, trigger_recalculation
from workflows.timeseries_names import DAILY_SCHEDULE_ID, DAILY_WORKFLOW_TYPE, recalculation_workflow_id

pytestmark = pytest.mark.usefixtures("worker")

TZ = "Asia/Tokyo"
MEAN = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase"},
}
FUNNEL = {
    "kind": "ExperimentMetric",
    "metric_type": "funnel",
    "series": [{"kind": "EventsNode", "event": "cart"}, {"kind": "EventsNode", "event": "purchase"}],
}


def started(days: int) -> datetime:
    return (datetime.now(UTC) - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)


def traffic(start: datetime, users: int = 40) -> list[Row]:
    """Users exposed over the days since `start`, some switching variant, with carts and purchases."""
    now = datetime.now(UTC) - timedelta(minutes=1)
    span = (now - start).total_seconds()
    rows: list[Row] = []
    for i in range(users):
        first = start + timedelta(seconds=span * i / users)
        variant = "control" if i % 2 else "test"
        rows.append(
            (
                "$feature_flag_called",
                f"u{i}",
                first,
                {"$feature_flag": "ts-exp", "$feature_flag_response": variant},
            )
        )
        if i % 9 == 0:
            other = "test" if variant == "control" else "control"
            late = min(first + timedelta(hours=20), now)
            rows.append(
                (
                    "$feature_flag_called",
                    f"u{i}",
                    late,
                    {"$feature_flag": "ts-exp", "$feature_flag_response": other},
                )
            )
        for k in range(i % 4):
            when = min(first + timedelta(hours=5 * k + 1), now)
            rows.append(("cart", f"u{i}", when, {}))
            rows.append(("purchase", f"u{i}", min(when + timedelta(minutes=30), now), {"amount": k}))
    return rows


async def experiment_with_traffic(api: ApiClient, settings: Settings, days: int = 3) -> dict[str, Any]:
    await set_project(settings, api.project_id, timezone=TZ)
    start = started(days)
    exp = await create_experiment(
        api, feature_flag_key="ts-exp", start_date=start.isoformat(), metrics=[MEAN, FUNNEL]
    )
    await store_events(settings, api.project_id, traffic(start))
    return exp


async def recalculate(api: ApiClient, exp: dict[str, Any], metric: dict[str, Any]) -> Any:
    body = {"metric": metric, "fingerprint": metric["fingerprint"]}
    return await api.post(api.project(f"experiments/{exp['id']}/recalculate_timeseries/"), body)


async def series(api: ApiClient, exp: dict[str, Any], metric: dict[str, Any]) -> dict[str, Any]:
    params = {"metric_uuid": metric["uuid"], "fingerprint": metric["fingerprint"]}
    r = await api.get(api.project(f"experiments/{exp['id']}/timeseries_results/"), params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_recalculated_days_equal_one_shot_analyses(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    exp = await experiment_with_traffic(api, settings)
    for metric in exp["metrics"]:
        first = await recalculate(api, exp, metric)
        assert first.status_code == 201, first.text
        body = first.json()
        assert set(body) == {"id", "experiment_id", "metric_uuid", "fingerprint", "status", "created_at"}
        assert body["status"] == "pending" and body["metric_uuid"] == metric["uuid"]
        await _finished(temporal_client, body["id"])
        out = await series(api, exp, metric)
        days = analysis_days(_start(exp), None, datetime.now(UTC), TZ)
        assert list(out["timeseries"]) == [d.day.isoformat() for d in days]
        assert out["status"] == "completed" and out["errors"] is None and out["recalculation_status"] is None
        for day in days:
            expected = await one_shot(settings, exp["id"], metric, day.query_to)
            assert out["timeseries"][day.day.isoformat()] == expected, day.day
        assert out["timeseries"][days[0].day.isoformat()] != out["timeseries"][days[-1].day.isoformat()]


async def _finished(client: Client, recalculation_id: str) -> BackfillResult:
    handle = client.get_workflow_handle(
        recalculation_workflow_id(recalculation_id), result_type=BackfillResult
    )
    result: BackfillResult = await handle.result()
    return result


async def test_rerequest_returns_the_active_request(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    """Requests go to a task queue no worker polls yet, so they stay `pending` as long as we look."""
    exp = await experiment_with_traffic(api, settings)
    metric = exp["metrics"][0]
    idle = settings.with_overrides(task_queue=f"{settings.task_queue}-idle")
    app = create_app(idle, temporal_client=temporal_client)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            quiet = ApiClient(http, api.key, api.project_id)
            first = await recalculate(quiet, exp, metric)
            second = await recalculate(quiet, exp, metric)
            assert (first.status_code, second.status_code) == (201, 200)
            assert second.json() == first.json() and second.json()["status"] == "pending"
            out = await series(quiet, exp, metric)
            assert out["recalculation_status"] == "pending"
            assert out["recalculation_created_at"] == first.json()["created_at"]
    async with database(idle) as engine, build_worker(temporal_client, idle, engine):
        result = await _finished(temporal_client, first.json()["id"])
    assert result.days_processed == len(analysis_days(_start(exp), None, datetime.now(UTC), TZ))
    third = await recalculate(api, exp, metric)  # the previous request is done: a new one
    assert third.status_code == 201 and third.json()["id"] != first.json()["id"]
    await _finished(temporal_client, third.json()["id"])


def _start(exp: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(exp["start_date"].replace("Z", "+00:00"))


def _trigger_sql(dialect: str, query_to: datetime) -> list[str]:
    """A real database fault: inserting the result row of one day raises."""
    if dialect == "sqlite":
        stamp = query_to.strftime("%Y-%m-%d %H:%M:%S.%f")
        return [
            "CREATE TRIGGER fail_day BEFORE INSERT ON experiment_metric_result "
            f"WHEN NEW.query_to = '{stamp}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ]
    return [
        "CREATE FUNCTION fail_day() RETURNS trigger AS $$ BEGIN "
        f"IF NEW.query_to = TIMESTAMPTZ '{query_to.isoformat()}' THEN RAISE EXCEPTION 'injected failure'; END IF; "
        "RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER fail_day BEFORE INSERT ON experiment_metric_result FOR EACH ROW EXECUTE FUNCTION fail_day()",
    ]


async def test_failure_on_one_day_then_resume_from_last_successful_day(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    exp = await experiment_with_traffic(api, settings, days=4)
    metric = exp["metrics"][0]
    days = analysis_days(_start(exp), None, datetime.now(UTC), TZ)
    dialect = "sqlite" if settings.database_url.startswith("sqlite") else "postgresql"
    await execute(settings, *_trigger_sql(dialect, days[2].query_to))
    body = (await recalculate(api, exp, metric)).json()
    failed = await wait_for_recalculation(settings, body["id"], "failed")
    assert failed.last_successful_date == days[1].day
    async with database(settings) as engine, make_sessionmaker(engine)() as session:
        kept = {r.query_to: r.updated_at for r in (await session.exec(select(ExperimentMetricResult))).all()}
    assert sorted(kept) == [days[0].query_to, days[1].query_to]
    partial = await series(api, exp, metric)
    assert partial["status"] == "partial" and partial["recalculation_status"] is None
    await execute(
        settings, "DROP TRIGGER fail_day" + (" ON experiment_metric_result" if dialect != "sqlite" else "")
    )
    result = await _finished(temporal_client, body["id"])
    assert result.days_processed == len(days) - 2  # the retry resumed after the last stored day
    done = await wait_for_recalculation(settings, body["id"], "completed")
    assert done.last_successful_date == days[-1].day
    async with database(settings) as engine, make_sessionmaker(engine)() as session:
        rows = (await session.exec(select(ExperimentMetricResult))).all()
    assert {r.query_to: r.updated_at for r in rows if r.query_to in kept} == kept  # not rewritten
    assert (await series(api, exp, metric))["status"] == "completed"


async def test_request_errors(api: ApiClient) -> None:
    draft = await create_experiment(api, feature_flag_key="draft-ts", metrics=[MEAN])
    path = api.project(f"experiments/{draft['id']}/recalculate_timeseries/")
    metric = draft["metrics"][0]
    cases = [
        ({"fingerprint": "x"}, "metric is required"),
        ({"metric": metric}, "fingerprint is required"),
        (
            {"metric": metric, "fingerprint": "x"},
            "Cannot recalculate timeseries for experiment that hasn't started",
        ),
    ]
    for body, message in cases:
        r = await api.post(path, body)
        assert r.status_code == 400 and r.json() == {
            "type": "validation_error",
            "code": "invalid_input",
            "detail": message,
            "attr": None,
        }
    results = api.project(f"experiments/{draft['id']}/timeseries_results/")
    for params, message in [
        ({"fingerprint": "x"}, "metric_uuid query parameter is required"),
        ({"metric_uuid": "m"}, "fingerprint query parameter is required"),
        ({"metric_uuid": "m", "fingerprint": "x"}, "Experiment has not been started yet"),
    ]:
        r = await api.get(results, params=params)
        assert r.status_code == 400 and r.json()["detail"] == message
    assert (await api.get(api.project("experiments/999999/timeseries_results/"))).status_code == 404
    reader = (await api.post("/api/personal_api_keys/", {"label": "r", "scopes": ["experiment:read"]})).json()
    r = await api.post(path, {"metric": metric, "fingerprint": "x"}, key=reader["value"])
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'experiment:write'"


async def test_pending_series_before_any_result(api: ApiClient, settings: Settings) -> None:
    exp = await experiment_with_traffic(api, settings, days=1)
    out = await series(api, exp, exp["metrics"][0])
    assert out["status"] == "pending" and set(out["timeseries"].values()) == {None}
    assert out["computed_at"] is None and out["created_at"] == exp["created_at"]


async def test_trigger_recalculation_covers_every_metric(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    exp = await experiment_with_traffic(api, settings, days=2)
    handle = await trigger_recalculation(
        temporal_client, api.project_id, exp["id"], task_queue=settings.task_queue, reason="launch"
    )
    created = await handle.result()
    assert len(created) == 2
    for recalculation_id in created:
        await _finished(temporal_client, recalculation_id)
    for metric in exp["metrics"]:
        assert (await series(api, exp, metric))["status"] == "completed"


async def test_daily_schedule_and_refresh(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    # The worker fixture's start-up created the schedule (the id is unique in the test's namespace);
    # ensuring it again updates it in place.
    await ensure_daily_schedule(temporal_client, settings.task_queue)
    description = await temporal_client.get_schedule_handle(DAILY_SCHEDULE_ID).describe()
    assert [i.every for i in description.schedule.spec.intervals] == [timedelta(hours=1)]
    exp = await experiment_with_traffic(api, settings, days=2)
    await set_project(settings, api.project_id, experiment_recalculation_hour=5)
    summary = await temporal_client.execute_workflow(
        DAILY_WORKFLOW_TYPE,
        DailyInput(hour=5),
        id="daily-test",
        task_queue=settings.task_queue,
        result_type=DailySummary,
    )
    assert (summary.total, summary.succeeded, summary.failed) == (1, 2, 0)
    now = datetime.now(UTC)
    yesterday = analysis_days(now - timedelta(days=1), None, now - timedelta(days=1), TZ)[0]
    for metric in exp["metrics"]:
        out = await series(api, exp, metric)
        expected = await one_shot(settings, exp["id"], metric, yesterday.query_to)
        assert out["timeseries"][yesterday.day.isoformat()] == expected
    other_hour = await temporal_client.execute_workflow(
        DAILY_WORKFLOW_TYPE,
        DailyInput(hour=6),
        id="daily-test-6",
        task_queue=settings.task_queue,
        result_type=DailySummary,
    )
    assert other_hour.total == 0
    # The schedule itself starts the workflow (hour taken from its nominal time).
    schedule = temporal_client.get_schedule_handle(DAILY_SCHEDULE_ID)
    await schedule.trigger()
    async with asyncio.timeout(30):
        while not (recent := (await schedule.describe()).info.recent_actions):
            await asyncio.sleep(0.1)
    started = recent[0].action
    assert isinstance(started, ScheduleActionExecutionStartWorkflow)
    run = temporal_client.get_workflow_handle(started.workflow_id, result_type=DailySummary)
    assert (await run.result()).hour == (await run.describe()).start_time.hour
