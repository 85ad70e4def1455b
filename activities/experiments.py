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
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.approvals import approval_gate, approval_required
from activities.errors import to_application_error
from activities.rows import (
    RowWriter,
    Written,
    audit,
    bump,
    load_for_transition,
    load_for_write,
    parse_columns,
    update_operation,
)
from activities.transitions import (
    check_assumed_status,
    check_expected_version,
    copy_effect,
    plan_operation,
    write_update,
)
from db import approvals as approval_queries
from db import experiments as queries
from db import operations
from db.metric_analysis import has_metrics
from db.tables import Experiment, ExperimentActivity, ExperimentToSavedMetric, FeatureFlag
from domain import approvals as rules
from domain.errors import NotFound, ValidationFailed
from domain.experiment_messages import (
    ActivityInput,
    CreateRequest,
    ExperimentSnapshot,
    RecordInput,
    ScheduleMarkInput,
    Truth,
    TruthInput,
    UpdateRequest,
)
from domain.lifecycle import stored_status
from domain.scheduling import with_status

DUPLICATE_KEY = "There is already a feature flag with this key."


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


class ExperimentActivities(RowWriter):
    def all(self) -> list[Callable[..., Any]]:
        return [
            self.create_experiment,
            self.apply_transition,
            self.apply_update,
            self.record_history,
            self.load_truth,
            self.mark_schedule,
        ]

    @activity.defn(name="experiment.load_truth")
    async def load_truth(self, inp: TruthInput) -> Truth:
        truth = await self.truth(inp.experiment_id)
        if truth is None:
            raise to_application_error(NotFound())
        return truth

    @activity.defn(name="experiment.create")
    async def create_experiment(self, inp: CreateInput) -> ExperimentSnapshot:
        async def work(session: AsyncSession) -> Written:
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
            audit(session, experiment, "create", req.actor_id, inp.op_id, None)
            snapshot = ExperimentSnapshot.model_validate(queries.snapshot_fields(experiment, flag))
            return snapshot, operations.row_image(experiment, flag)

        return await self.once(inp.op_id, work, operation="create")

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
        async def work(session: AsyncSession) -> Written:
            rows = await load_for_transition(session, inp.experiment_id)
            experiment, flag = rows.experiment, rows.flag
            check_expected_version(experiment, inp.request)
            before = stored_status(experiment.start_date, experiment.end_date)
            effect = plan_operation(inp.operation, experiment, flag, inp.request, inp.now)
            gate = await approval_gate(
                session, experiment, flag, inp, project_has_policies=rows.approval_policies > 0
            )
            if gate is not None:
                await session.commit()  # the change request outlives this refused operation
                raise approval_required(gate)
            started, ended = experiment.start_date, experiment.end_date
            copy_effect(effect, experiment, flag, inp.now)
            bump(session, experiment, inp.now)
            audit(
                session,
                experiment,
                inp.operation,
                inp.request.actor_id,
                inp.op_id,
                before.value,
                via=inp.request.via,
                evidence=inp.request.evidence,
            )
            fields = queries.snapshot_fields(experiment, flag)
            if (started is None) != (experiment.start_date is None) or (ended is None) != (
                experiment.end_date is None
            ):
                # Launch and end recalculate the results; the workflow skips that with nothing to compute.
                fields["has_metrics"] = await has_metrics(session, experiment, rows.saved_metric_links)
            return ExperimentSnapshot.model_validate(fields), operations.row_image(experiment, flag)

        return await self.once(inp.op_id, work, inp.experiment_id, inp.operation)

    @activity.defn(name="experiment.update")
    async def apply_update(self, inp: UpdateInput) -> ExperimentSnapshot:
        async def work(session: AsyncSession) -> Written:
            experiment, flag = await load_for_write(session, inp.experiment_id, include_deleted=True)
            check_assumed_status(experiment, inp.request)
            gate = await _update_gate(session, experiment, flag, inp)
            if gate is not None:
                await session.commit()  # the change request outlives this refused write
                raise approval_required(gate)
            return await write_update(session, experiment, flag, inp.request, inp.now, inp.op_id)

        return await self.once(inp.op_id, work, inp.experiment_id, update_operation(inp.request.changes))

    @activity.defn(name="experiment.mark_schedule")
    async def mark_schedule(self, inp: ScheduleMarkInput) -> ExperimentSnapshot:
        """Record a failed or held-back scheduled action, so the timer never fires it again."""
        async with self.sessionmaker() as session:
            experiment, flag = await load_for_write(session, inp.experiment_id)
            experiment.scheduling_config = with_status(
                experiment.scheduling_config, inp.action, inp.state, inp.now, inp.detail
            )
            session.add(experiment)
            await session.commit()
            return ExperimentSnapshot.model_validate(queries.snapshot_fields(experiment, flag))

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
                    evidence=entry.evidence,
                )
            )
            await session.commit()


async def _update_gate(
    session: AsyncSession, experiment: Experiment, flag: FeatureFlag | None, inp: UpdateInput
) -> dict[str, Any] | None:
    """A PATCH that changes the flag (launch by start_date, update_feature_flag_params, a draft's
    variants) needs the same approval as the equivalent flag write."""
    req = inp.request
    if not req.flag_changes or flag is None or req.approved_change_request_id is not None:
        return None
    intent = {
        "operation": "update",
        "experiment_id": inp.experiment_id,
        "request": req.model_dump(mode="json", exclude={"observed", "apply_by", "request_id"}),
    }
    return await approval_queries.gate(
        session,
        flag=flag,
        action_keys=rules.flag_change_action_keys(flag.active, flag.filters, req.flag_changes),
        intent=intent,
        description=f"update of experiment {experiment.name!r}",
        actor_id=req.actor_id,
        origin_op_id=inp.op_id,
        now=inp.now,
        experiment_id=inp.experiment_id,
    )
