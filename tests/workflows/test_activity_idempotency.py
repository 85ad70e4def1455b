"""The lifecycle activities run once per operation id: a re-run (a retried or replayed local
activity) returns the first result and writes nothing, whether its preconditions now fail or
its work would succeed a second time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from sqlmodel import col, func, select
from temporalio.testing import ActivityEnvironment

from activities.experiments import ExperimentActivities, UpdateInput
from db.engine import make_async_engine, make_sessionmaker
from db.tables import AppliedOperation, Experiment, ExperimentActivity
from domain.experiment_messages import ActivityInput, TransitionRequest, UpdateRequest
from domain.lifecycle import Status
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.experiments import create_experiment

pytestmark = pytest.mark.usefixtures("worker")


@pytest_asyncio.fixture(loop_scope="session")
async def activities(settings: Settings) -> AsyncIterator[ExperimentActivities]:
    engine = make_async_engine(settings.database_url)
    try:
        yield ExperimentActivities(make_sessionmaker(engine))
    finally:
        await engine.dispose()


async def _counts(activities: ExperimentActivities, experiment_id: int) -> tuple[int, int, int]:
    """(row version, audit rows, idempotency rows) of the experiment."""
    async with activities.sessionmaker() as session:
        experiment = await session.get(Experiment, experiment_id)
        assert experiment is not None
        audit = await session.exec(
            select(func.count()).where(col(ExperimentActivity.experiment_id) == experiment_id)
        )
        applied = await session.exec(
            select(func.count()).where(col(AppliedOperation.experiment_id) == experiment_id)
        )
        return experiment.version, audit.one(), applied.one()


async def test_a_rerun_transition_returns_its_first_result(
    api: ApiClient, activities: ExperimentActivities
) -> None:
    exp = await create_experiment(api)
    inp = ActivityInput(
        op_id="test:launch-once",
        operation="launch",
        project_id=api.project_id,
        experiment_id=exp["id"],
        now=datetime(2026, 12, 1, 12, tzinfo=UTC),
        request=TransitionRequest(),
    )
    env = ActivityEnvironment()
    first = await env.run(activities.apply_transition, inp)
    after_first = await _counts(activities, exp["id"])
    # Launching a running experiment fails its precondition: the first result comes back instead.
    again = await env.run(activities.apply_transition, inp)
    assert again == first and first.start_date is not None
    assert await _counts(activities, exp["id"]) == after_first


async def test_a_rerun_update_that_would_succeed_again_writes_nothing(
    api: ApiClient, activities: ExperimentActivities
) -> None:
    exp = await create_experiment(api)
    inp = UpdateInput(
        op_id="test:rename-once",
        project_id=api.project_id,
        experiment_id=exp["id"],
        now=datetime(2026, 12, 1, 12, tzinfo=UTC),
        request=UpdateRequest(actor_id=None, changes={"name": "renamed"}, assumed_status=Status.DRAFT),
    )
    env = ActivityEnvironment()
    first = await env.run(activities.apply_update, inp)
    after_first = await _counts(activities, exp["id"])
    # A rename can be applied twice; the taken idempotency key rolls the second one back.
    again = await env.run(activities.apply_update, inp)
    assert again == first and first.name == "renamed"
    assert await _counts(activities, exp["id"]) == after_first
