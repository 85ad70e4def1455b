"""The autopilot end to end through the real worker (issue 16): each rule against seeded events,
acting through the same path as REST, with its evidence in the audit trail and the workflow's
history; shadow mode acts on nothing; an approval policy turns the action into a change request."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.experiments import ExperimentActivities
from db.engine import make_async_engine, make_sessionmaker
from db.tables import Experiment
from domain.experiment_messages import ActivityInput, HistoryEntry, TransitionRequest
from domain.timeseries_messages import DailyInput, DailySummary
from settings import Settings
from tests.api.test_approvals import eventually, get
from tests.support.analysis import Row, set_project, store_events
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment, handle
from tests.support.histories import record_golden
from tests.support.users import make_user
from workflows.timeseries_names import DAILY_WORKFLOW_TYPE

pytestmark = pytest.mark.usefixtures("worker")

WIN = "11111111-1111-4111-8111-111111111111"
GUARD = "22222222-2222-4222-8222-222222222222"
FLAG = "autopilot-exp"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url  # workflow behaviour is the subject; both databases run the API suites


def metric(uuid: str, event: str, goal: str = "increase") -> dict[str, Any]:
    return {
        "kind": "ExperimentMetric",
        "uuid": uuid,
        "metric_type": "mean",
        "goal": goal,
        "source": {"kind": "EventsNode", "event": event},
    }


def population(start: datetime, rates: dict[str, dict[str, float]], users: dict[str, int]) -> list[Row]:
    """`users[variant]` exposures each, and per event name the share of them who did it once."""
    rows: list[Row] = []
    when = start + timedelta(milliseconds=200)
    for variant, count in users.items():
        for i in range(count):
            user = f"{variant}-{i}"
            props = {"$feature_flag": FLAG, "$feature_flag_response": variant}
            rows.append(("$feature_flag_called", user, when, props))
            for event, by_variant in rates.items():
                if i < round(count * by_variant.get(variant, 0.0)):
                    rows.append((event, user, when + timedelta(milliseconds=100), {}))
    return rows


async def launched(
    api: ApiClient, settings: Settings, autopilot: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    body = {
        "feature_flag_key": FLAG,
        "metrics": [metric(WIN, "purchase")],
        "metrics_secondary": [metric(GUARD, "refund", goal="decrease")],
        "scheduling_config": {"autopilot": autopilot},
    } | extra
    exp = await create_experiment(api, **body)
    r = await action(api, exp["id"], "launch")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def seed(api: ApiClient, settings: Settings, exp: dict[str, Any], **kwargs: Any) -> None:
    start = datetime.fromisoformat(exp["start_date"].replace("Z", "+00:00"))
    await store_events(settings, api.project_id, population(start, **kwargs))
    await asyncio.sleep(max(0.0, (start + timedelta(seconds=1) - datetime.now(UTC)).total_seconds()))


async def evaluate(api: ApiClient, eid: int) -> dict[str, Any]:
    r = await action(api, eid, "evaluate_rules")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def trail(api: ApiClient, eid: int) -> list[dict[str, Any]]:
    return list((await api.get(api.project(f"experiments/{eid}/activity/"))).json()["results"])


CLEAR_WIN = {"purchase": {"control": 0.10, "test": 0.30}}
EVEN = {"purchase": {"control": 0.20, "test": 0.20}}
USERS = {"control": 600, "test": 600}


async def test_a_clear_winner_ships_with_its_evidence(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    exp = await launched(api, settings, {"stop_when_significant": {"min_days": 0, "action": "ship_winner"}})
    await seed(api, settings, exp, rates=CLEAR_WIN, users=USERS)
    decision = await evaluate(api, exp["id"])
    assert (decision["action"], decision["variant_key"], decision["conclusion"]) == (
        "ship_variant",
        "test",
        "won",
    )
    assert decision["metric"] == WIN and decision["rule"] == "stop_when_significant"
    test = next(v for v in decision["evidence"][0]["variants"] if v["key"] == "test")
    assert test["n"] == 600 and test["interval"][0] > 0 and test["p_value"] < 0.05
    now = await get(api, exp["id"])
    assert now["status"] == "stopped" and now["conclusion"] == "won"
    variants = now["feature_flag"]["filters"]["multivariate"]["variants"]
    assert {v["key"]: v["rollout_percentage"] for v in variants} == {"control": 0, "test": 100}
    assert now["scheduling_config"]["status"]["autopilot"]["summary"].startswith("test wins")
    entry = next(e for e in await trail(api, exp["id"]) if e["via"] == "autopilot")
    assert entry["operation"] == "ship_variant" and entry["outcome"] == "accepted"
    assert (
        entry["evidence"]["summary"] == decision["summary"] and entry["evidence"]["srm_p_value"] is not None
    )
    history = await handle(temporal_client, api.project_id, exp["id"]).query(
        "history", result_type=list[HistoryEntry]
    )
    shipped = next(h for h in history if h.via == "autopilot")
    assert shipped.evidence is not None and shipped.evidence["variant_key"] == "test"


async def test_an_a_a_experiment_does_nothing(api: ApiClient, settings: Settings) -> None:
    exp = await launched(api, settings, {"stop_when_significant": {"min_days": 0}})
    await seed(api, settings, exp, rates=EVEN, users=USERS)
    decision = await evaluate(api, exp["id"])
    assert decision["action"] == "none" and "includes 0" in decision["summary"]
    assert (await get(api, exp["id"]))["status"] == "running"
    assert not [e for e in await trail(api, exp["id"]) if e["via"] == "autopilot"]


async def test_a_harmful_variant_trips_its_guardrail_on_the_timer(api: ApiClient, settings: Settings) -> None:
    rules = {
        "guardrails": [{"metric": GUARD, "max_regression": 0.05, "action": "pause"}],
        "check_every_hours": 0.001,
    }
    exp = await launched(api, settings, rules)
    await seed(api, settings, exp, rates={"refund": {"control": 0.05, "test": 0.25}}, users=USERS)

    async def paused() -> bool:
        return bool((await get(api, exp["id"]))["status"] == "paused")

    await eventually(paused, timeout=30)
    entry = next(e for e in await trail(api, exp["id"]) if e["via"] == "autopilot")
    assert entry["operation"] == "pause" and entry["evidence"]["rule"] == "guardrail"
    assert entry["evidence"]["metric"] == GUARD


async def test_an_uneven_split_trips_the_srm_rule(api: ApiClient, settings: Settings) -> None:
    exp = await launched(api, settings, {"srm": {"action": "pause"}})
    await seed(api, settings, exp, rates=EVEN, users={"control": 600, "test": 400})
    decision = await evaluate(api, exp["id"])
    assert (decision["action"], decision["rule"]) == ("pause", "srm")
    assert decision["srm_mismatch"] is True and decision["srm_p_value"] < 0.001
    assert (await get(api, exp["id"]))["status"] == "paused"


async def test_shadow_mode_records_what_it_would_do_and_changes_nothing(
    api: ApiClient, settings: Settings
) -> None:
    exp = await launched(api, settings, {"mode": "shadow", "stop_when_significant": {"min_days": 0}})
    await seed(api, settings, exp, rates=CLEAR_WIN, users=USERS)
    decision = await evaluate(api, exp["id"])
    assert decision["mode"] == "shadow" and decision["action"] == "ship_variant"
    now = await get(api, exp["id"])
    assert now["status"] == "running" and now["conclusion"] is None
    entry = next(e for e in await trail(api, exp["id"]) if e["via"] == "autopilot")
    assert entry["outcome"] == "shadow" and entry["evidence"]["variant_key"] == "test"


async def test_an_approval_policy_turns_the_action_into_a_change_request(
    api: ApiClient, settings: Settings
) -> None:
    approver, approver_key = await make_user(settings, api.project_id)
    policy = {"action_key": "feature_flag.disable", "approver_config": {"quorum": 1, "users": [approver]}}
    assert (await api.post(api.project("approval_policies/"), policy)).status_code == 201
    exp = await launched(api, settings, {"guardrails": [{"metric": GUARD, "action": "pause"}]})
    await seed(api, settings, exp, rates={"refund": {"control": 0.05, "test": 0.25}}, users=USERS)
    decision = await evaluate(api, exp["id"])
    assert decision["action"] == "pause"
    assert (await get(api, exp["id"]))["status"] == "running"  # held back for approval
    requests = (await api.get(api.project("change_requests/"))).json()["results"]
    assert len(requests) == 1 and requests[0]["state"] == "pending"
    ok = await api.post(api.project(f"change_requests/{requests[0]['id']}/approve/"), {}, key=approver_key)
    assert ok.status_code == 200, ok.text

    async def paused() -> bool:
        return bool((await get(api, exp["id"]))["status"] == "paused")

    await eventually(paused)


async def test_a_change_after_the_judgement_wins(api: ApiClient, settings: Settings) -> None:
    """A decision applies only to the row version it was judged on: an operator's pause in between
    (here made before the workflow acts on a decision judged earlier) wins, and nothing is shipped.
    The transition activity is called directly with that decision: no race to time."""
    exp = await launched(api, settings, {"stop_when_significant": {"min_days": 0}})
    engine = make_async_engine(settings.database_url)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            row = await session.get(Experiment, exp["id"])
            assert row is not None
            judged_version = row.version
        assert (await action(api, exp["id"], "pause")).status_code == 200  # the manual change
        request = TransitionRequest(
            via="autopilot", variant_key="test", conclusion="won", conclusion_provided=True,
            expected_version=judged_version,
        )  # fmt: skip
        inp = ActivityInput(
            op_id="autopilot-stale", operation="ship_variant", project_id=api.project_id,
            experiment_id=exp["id"], now=datetime.now(UTC), request=request,
        )  # fmt: skip
        with pytest.raises(ApplicationError, match="changed after the autopilot judged it"):
            await ExperimentActivities(sessionmaker).apply_transition(inp)
    finally:
        await engine.dispose()
    now = await get(api, exp["id"])
    assert now["status"] == "paused" and now["conclusion"] is None


async def test_the_daily_refresh_evaluates_the_rules(
    api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    """After the daily recalculation of an experiment with rules, its workflow evaluates them (the
    rules' own timer is a day away here), and acts as on its timer."""
    exp = await launched(api, settings, {"srm": {"action": "pause"}})
    await seed(api, settings, exp, rates=EVEN, users={"control": 600, "test": 400})
    await set_project(settings, api.project_id, experiment_recalculation_hour=7)
    summary = await temporal_client.execute_workflow(
        DAILY_WORKFLOW_TYPE,
        DailyInput(hour=7),
        id=f"daily-autopilot-{exp['id']}",
        task_queue=settings.task_queue,
        result_type=DailySummary,
    )
    assert summary.total == 1 and summary.failed == 0
    daily = await temporal_client.get_workflow_handle(f"daily-autopilot-{exp['id']}").fetch_history()
    await record_golden(daily, "daily_refresh_evaluates_autopilot")

    async def paused() -> bool:
        return bool((await get(api, exp["id"]))["status"] == "paused")

    await eventually(paused, timeout=30)
    entry = next(e for e in await trail(api, exp["id"]) if e["via"] == "autopilot")
    assert entry["operation"] == "pause" and entry["evidence"]["rule"] == "srm"
