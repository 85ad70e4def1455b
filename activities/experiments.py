"""Experiment side effects: the row and its flag written in one transaction, idempotently.

Every method records its operation id in `applied_operation` in the same transaction as the
change, so a retry after a crash (or a replayed local activity) returns the first result and
changes nothing twice. Values are absolute targets, never toggles (temporal-notes §8).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import to_application_error
from activities.transitions import apply_operation
from db import experiments as queries
from db.tables import AppliedOperation, Experiment, ExperimentActivity, ExperimentToSavedMetric, FeatureFlag
from domain.errors import Conflict, DomainError, NotFound, ValidationFailed
from domain.experiment_messages import (
    ActivityInput,
    AppliedRecord,
    CreateRequest,
    ExperimentSnapshot,
    HistoryEntry,
    RecordInput,
    Truth,
    TruthInput,
    UpdateRequest,
)
from domain.lifecycle import stored_status

DUPLICATE_KEY = "There is already a feature flag with this key."
DATETIME_COLUMNS = ("start_date", "end_date", "created_at", "updated_at")


class CreateInput(BaseModel):
    op_id: str
    now: datetime
    request: CreateRequest


class UpdateInput(BaseModel):
    op_id: str
    project_id: int
    experiment_id: int
    now: datetime
    request: UpdateRequest


def parse_columns(values: dict[str, Any]) -> dict[str, Any]:
    """The API sends JSON-safe columns; datetimes arrive as ISO strings."""
    out = dict(values)
    for name in DATETIME_COLUMNS:
        if isinstance(out.get(name), str):
            out[name] = datetime.fromisoformat(out[name])
    return out


class ExperimentActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.create_experiment,
            self.apply_transition,
            self.apply_update,
            self.record_history,
            self.load_truth,
        ]

    async def _once(
        self,
        op_id: str,
        work: Callable[[AsyncSession], Any],
        experiment_id: int | None = None,
        operation: str | None = None,
    ) -> ExperimentSnapshot:
        """Run `work` in one transaction unless `op_id` was already applied.

        A refused precondition carries the row's current snapshot, so a workflow whose cached
        state drifted from the database (e.g. a flag edited elsewhere) adopts the truth.
        """
        try:
            async with self.sessionmaker() as session:
                previous = await queries.applied_result(session, op_id)
                if previous is not None:
                    return ExperimentSnapshot.model_validate(previous)
                snapshot: ExperimentSnapshot = await work(session)
                session.add(
                    AppliedOperation(
                        op_id=op_id,
                        experiment_id=snapshot.experiment_id,
                        operation=operation,
                        result=snapshot.model_dump(mode="json"),
                    )
                )
                await session.commit()
                return snapshot
        except DomainError as err:
            current = await self._current(experiment_id) if experiment_id is not None else None
            raise to_application_error(err, current) from None

    async def _current(self, experiment_id: int) -> dict[str, Any] | None:
        truth = await self._truth(experiment_id)
        return truth.model_dump(mode="json") if truth is not None else None

    async def _truth(self, experiment_id: int) -> Truth | None:
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

    @activity.defn(name="experiment.load_truth")
    async def load_truth(self, inp: TruthInput) -> Truth:
        truth = await self._truth(inp.experiment_id)
        if truth is None:
            raise to_application_error(NotFound())
        return truth

    @activity.defn(name="experiment.create")
    async def create_experiment(self, inp: CreateInput) -> ExperimentSnapshot:
        async def work(session: AsyncSession) -> ExperimentSnapshot:
            req = inp.request
            flag = await self._resolve_flag(session, req, inp.now)
            row = parse_columns(req.row)
            assert flag.id is not None
            experiment = Experiment(**row, feature_flag_id=flag.id, created_by_id=req.actor_id)
            experiment.created_at = experiment.updated_at = inp.now
            queries.refresh_status(experiment)
            session.add(experiment)
            await session.flush()
            assert experiment.id is not None
            for link in req.saved_metric_links:
                session.add(
                    ExperimentToSavedMetric(
                        experiment_id=experiment.id,
                        saved_metric_id=link["saved_metric_id"],
                        metadata_=link.get("metadata") or {},
                        created_at=inp.now,
                        updated_at=inp.now,
                    )
                )
            _audit(session, experiment, "create", req.actor_id, inp.op_id, None)
            return ExperimentSnapshot.model_validate(queries.snapshot_fields(experiment, flag))

        return await self._once(inp.op_id, work, operation="create")

    async def _resolve_flag(self, session: AsyncSession, req: CreateRequest, now: datetime) -> FeatureFlag:
        if req.flag_id is not None:
            existing = await session.get(FeatureFlag, req.flag_id)
            if existing is None:
                raise NotFound()
            return existing
        assert req.new_flag is not None
        flag = FeatureFlag(**req.new_flag, created_by_id=req.actor_id)
        flag.created_at = flag.updated_at = now
        session.add(flag)
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError:
            raise ValidationFailed(DUPLICATE_KEY, attr="key", code="unique") from None
        return flag

    @activity.defn(name="experiment.transition")
    async def apply_transition(self, inp: ActivityInput) -> ExperimentSnapshot:
        async def work(session: AsyncSession) -> ExperimentSnapshot:
            experiment, flag = await _load(session, inp.experiment_id)
            before = stored_status(experiment.start_date, experiment.end_date)
            apply_operation(inp.operation, experiment, flag, inp.request, inp.now)
            _bump(session, experiment, inp.now)
            _audit(
                session,
                experiment,
                inp.operation,
                inp.request.actor_id,
                inp.op_id,
                before.value,
                via=inp.request.via,
            )
            return ExperimentSnapshot.model_validate(queries.snapshot_fields(experiment, flag))

        return await self._once(inp.op_id, work, inp.experiment_id, inp.operation)

    @activity.defn(name="experiment.update")
    async def apply_update(self, inp: UpdateInput) -> ExperimentSnapshot:
        async def work(session: AsyncSession) -> ExperimentSnapshot:
            experiment, flag = await _load(session, inp.experiment_id, include_deleted=True)
            req = inp.request
            current = stored_status(experiment.start_date, experiment.end_date)
            if current.value != _stored(req.assumed_status.value):
                raise Conflict("The experiment changed while this request was processed. Retry the request.")
            before = current.value
            for name, value in parse_columns(req.changes).items():
                setattr(experiment, name, value)
            if req.flag_changes and flag is not None:
                _change_flag(session, flag, req.flag_changes, inp.now)
            _bump(session, experiment, inp.now)
            operation = _update_operation(req.changes)
            _audit(session, experiment, operation, req.actor_id, inp.op_id, before)
            return ExperimentSnapshot.model_validate(queries.snapshot_fields(experiment, flag))

        return await self._once(inp.op_id, work, inp.experiment_id, _update_operation(inp.request.changes))

    @activity.defn(name="experiment.record")
    async def record_history(self, inp: RecordInput) -> None:
        """Audit a transition the workflow refused (signals and timers have no caller to tell)."""
        async with self.sessionmaker() as session:
            entry = inp.entry
            session.add(
                ExperimentActivity(
                    team_id=inp.project_id,
                    experiment_id=inp.experiment_id,
                    operation=entry.operation,
                    outcome=entry.outcome,
                    via=entry.via,
                    actor_id=entry.actor_id,
                    from_status=entry.from_status,
                    to_status=entry.to_status,
                    detail=entry.detail,
                    operation_id=entry.update_id,
                    created_at=entry.at,
                )
            )
            await session.commit()


def _stored(status: str) -> str:
    return "running" if status == "paused" else status


def _update_operation(changes: dict[str, Any]) -> str:
    if changes.get("deleted") is True:
        return "delete"
    if changes.get("deleted") is False:
        return "restore"
    return "update"


async def _load(
    session: AsyncSession, experiment_id: int, *, include_deleted: bool = False
) -> tuple[Experiment, FeatureFlag | None]:
    experiment = await queries.lock_experiment(session, experiment_id)
    if experiment is None or (experiment.deleted and not include_deleted):
        raise NotFound()
    return experiment, await queries.flag_of(session, experiment)


def _change_flag(session: AsyncSession, flag: FeatureFlag, changes: dict[str, Any], now: datetime) -> None:
    for name, value in changes.items():
        setattr(flag, name, value)
    flag.version += 1
    flag.updated_at = now
    session.add(flag)


def _bump(session: AsyncSession, experiment: Experiment, now: datetime) -> None:
    experiment.version += 1
    experiment.updated_at = now
    queries.refresh_status(experiment)
    session.add(experiment)


def _audit(
    session: AsyncSession,
    experiment: Experiment,
    operation: str,
    actor_id: int | None,
    op_id: str,
    before: str | None,
    *,
    via: str = "rest",
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
        )
    )


__all__ = ["ApplicationError", "CreateInput", "ExperimentActivities", "HistoryEntry", "UpdateInput"]
