"""Direct database access for analysis tests: events written straight into the `event` table, and a
one-shot analysis through the same code the API and the activity run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import make_async_engine, make_sessionmaker
from db.events import EventRow, insert_events
from db.metric_analysis import analysis_context, metric_results
from db.tables import Experiment, ExperimentTimeseriesRecalculation
from domain.metric_engine import to_micros
from settings import Settings

Row = tuple[str, str, datetime, dict[str, Any]]


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(settings.database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def store_events(settings: Settings, project_id: int, rows: Sequence[Row]) -> None:
    events = [
        EventRow(str(uuid.uuid4()), project_id, name, user, when, props) for name, user, when, props in rows
    ]
    async with database(settings) as engine, engine.begin() as conn:
        await insert_events(conn, events)


async def execute(settings: Settings, *statements: str) -> None:
    async with database(settings) as engine, engine.begin() as conn:
        for statement in statements:
            await conn.exec_driver_sql(statement)


async def set_project(settings: Settings, project_id: int, **values: Any) -> None:
    assignments = ", ".join(f"{key} = :{key}" for key in values)
    async with database(settings) as engine, engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE project SET {assignments} WHERE id = :id"), {**values, "id": project_id}
        )


async def one_shot(
    settings: Settings, experiment_id: int, metric: dict[str, Any], as_of: datetime
) -> dict[str, Any]:
    """A fresh analysis with a single boundary: what a results query at `as_of` returns."""
    async with database(settings) as engine, make_sessionmaker(engine)() as session:
        experiment = await session.get(Experiment, experiment_id)
        assert experiment is not None
        context = await analysis_context(session, experiment, [metric])
        return (await metric_results(session, context, metric, [to_micros(as_of)]))[0]


async def recalculation_row(
    session: AsyncSession, recalculation_id: str
) -> ExperimentTimeseriesRecalculation | None:
    return await session.get(ExperimentTimeseriesRecalculation, recalculation_id)


async def wait_for_recalculation(
    settings: Settings, recalculation_id: str, status: str, timeout: float = 30.0
) -> ExperimentTimeseriesRecalculation:
    async with database(settings) as engine:
        async with asyncio.timeout(timeout):
            while True:
                async with make_sessionmaker(engine)() as session:
                    row = await recalculation_row(session, recalculation_id)
                if row is not None and row.status == status:
                    return row
                await asyncio.sleep(0.05)
