"""Shared pieces of the experiment activities: loading rows for write, bumping versions,
the audit trail, and the idempotent-transaction runner every write goes through."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.errors import to_application_error
from db import experiments as queries
from db.engine import write_queue
from db.operations import ABANDONED
from db.tables import AppliedOperation, Experiment, ExperimentActivity, FeatureFlag
from domain.errors import Abandoned, DomainError, NotFound
from domain.experiment_messages import AppliedRecord, ExperimentSnapshot, Truth

DATETIME_COLUMNS = ("start_date", "end_date", "created_at", "updated_at")
# What a write returns: the new snapshot, and the rows it left (db.experiments.row_image).
Written = tuple[ExperimentSnapshot, dict[str, Any] | None]


def parse_columns(values: dict[str, Any]) -> dict[str, Any]:
    """The API sends JSON-safe columns; datetimes arrive as ISO strings."""
    out = dict(values)
    for name in DATETIME_COLUMNS:
        if isinstance(out.get(name), str):
            out[name] = datetime.fromisoformat(out[name])
    return out


class RowWriter:
    """Holds the sessionmaker; runs each write once per operation id."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    def _write_queue(self) -> AbstractAsyncContextManager[Any]:
        engine = self.sessionmaker.kw.get("bind")
        return write_queue(engine) if isinstance(engine, AsyncEngine) else contextlib.nullcontext()

    async def once(
        self,
        op_id: str,
        work: Callable[[AsyncSession], Awaitable[Written]],
        experiment_id: int | None = None,
        operation: str | None = None,
    ) -> ExperimentSnapshot:
        """Run `work` in one transaction unless `op_id` was already applied.

        `work` returns the new snapshot and the rows it left (`row_image`), stored with the
        operation id: the API renders its answer from them. An op id the API fenced off (it gave
        up and told its caller the change was not applied) can never be applied afterwards.

        Optimistic: retries are rare, so the idempotency row is looked up only when the work
        fails, either on its preconditions (the first attempt changed the state they check) or
        on inserting that row (its key is taken): the transaction is rolled back and the first
        result returned. A refused precondition carries the row's current snapshot, so a
        workflow whose cached state drifted from the database (e.g. a flag edited elsewhere)
        adopts the truth.
        """
        try:
            async with self._write_queue(), self.sessionmaker() as session:
                try:
                    snapshot, image = await work(session)
                    session.add(
                        AppliedOperation(
                            op_id=op_id,
                            experiment_id=snapshot.experiment_id,
                            operation=operation,
                            result=snapshot.model_dump(mode="json"),
                            image=image,
                        )
                    )
                    await session.commit()
                    return snapshot
                except (DomainError, IntegrityError):
                    await session.rollback()
                    previous = await session.get(AppliedOperation, op_id)
                    if previous is not None and previous.operation == ABANDONED:
                        raise Abandoned() from None
                    if previous is not None and previous.result is not None:
                        return ExperimentSnapshot.model_validate(previous.result)
                    raise
        except DomainError as err:
            current = await self.current(experiment_id) if experiment_id is not None else None
            raise to_application_error(err, current) from None

    async def current(self, experiment_id: int) -> dict[str, Any] | None:
        truth = await self.truth(experiment_id)
        return truth.model_dump(mode="json") if truth is not None else None

    async def truth(self, experiment_id: int) -> Truth | None:
        """The row's snapshot plus the operations recently applied to it.

        A local activity can commit while the workflow task that ran it is lost (an update
        aborted by the server under contention); the workflow reconciles from this.
        """
        async with self.sessionmaker() as session:
            experiment = await session.get(Experiment, experiment_id)
            if experiment is None:
                return None
            fields = queries.snapshot_fields(experiment, await queries.flag_of(session, experiment))
            applied = [
                AppliedRecord(op_id=row.op_id, operation=row.operation, at=row.created_at, result=row.result)
                for row in await queries.recent_operations(session, experiment_id)
                if row.result
            ]
            return Truth(snapshot=ExperimentSnapshot.model_validate(fields), applied=applied)


def stored_name(status: str) -> str:
    return "running" if status == "paused" else status


def update_operation(changes: dict[str, Any]) -> str:
    if changes.get("deleted") is True:
        return "delete"
    if changes.get("deleted") is False:
        return "restore"
    return "update"


async def load_for_write(
    session: AsyncSession, experiment_id: int, *, include_deleted: bool = False
) -> tuple[Experiment, FeatureFlag | None]:
    found = await queries.experiment_with_flag(session, experiment_id, lock=True)
    if found is None or (found[0].deleted and not include_deleted):
        raise NotFound()
    return found


async def load_for_transition(session: AsyncSession, experiment_id: int) -> queries.TransitionRows:
    found = await queries.rows_for_transition(session, experiment_id)
    if found is None or found.experiment.deleted:
        raise NotFound()
    return found


def change_flag(session: AsyncSession, flag: FeatureFlag, changes: dict[str, Any], now: datetime) -> None:
    for name, value in changes.items():
        setattr(flag, name, value)
    flag.version += 1
    flag.updated_at = now
    session.add(flag)


def bump(session: AsyncSession, experiment: Experiment, now: datetime) -> None:
    experiment.version += 1
    experiment.updated_at = now
    queries.refresh_status(experiment)
    session.add(experiment)


def audit(
    session: AsyncSession,
    experiment: Experiment,
    operation: str,
    actor_id: int | None,
    op_id: str,
    before: str | None,
    *,
    via: str = "rest",
    evidence: dict[str, Any] | None = None,
) -> None:
    assert experiment.id is not None
    session.add(
        ExperimentActivity(
            team_id=experiment.team_id,
            experiment_id=experiment.id,
            operation=operation,
            outcome="accepted",
            via=via,
            actor_id=actor_id,
            from_status=before,
            to_status=experiment.status,
            operation_id=op_id,
            created_at=experiment.updated_at,
            evidence=evidence,
        )
    )
