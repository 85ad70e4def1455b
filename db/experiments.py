"""Queries for experiments: lookups, id allocation, the lifecycle snapshot. Helpers never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import (
    AppliedOperation,
    ApprovalPolicy,
    ChangeRequest,
    Experiment,
    ExperimentActivity,
    ExperimentIdAllocation,
    ExperimentToSavedMetric,
    FeatureFlag,
)
from domain.experiment_messages import ExperimentSnapshot
from domain.flag_rules import flag_variant_keys
from domain.lifecycle import LifecycleFacts, stored_status


async def allocate_experiment_id(
    session: AsyncSession, team_id: int, idempotency_key: str | None = None, request_hash: str | None = None
) -> int:
    """A new experiment id; with a key, unique per project (IntegrityError when it is taken)."""
    allocation = ExperimentIdAllocation(
        team_id=team_id, idempotency_key=idempotency_key, request_hash=request_hash
    )
    session.add(allocation)
    await session.flush()
    assert allocation.id is not None
    return allocation.id


async def allocation_by_key(
    session: AsyncSession, team_id: int, idempotency_key: str
) -> ExperimentIdAllocation | None:
    result = await session.exec(
        select(ExperimentIdAllocation).where(
            ExperimentIdAllocation.team_id == team_id,
            ExperimentIdAllocation.idempotency_key == idempotency_key,
        )
    )
    return result.first()


async def experiment_by_id(
    session: AsyncSession, team_id: int, experiment_id: int, *, include_deleted: bool = False
) -> Experiment | None:
    experiment = await session.get(Experiment, experiment_id)
    if experiment is None or experiment.team_id != team_id:
        return None
    if experiment.deleted and not include_deleted:
        return None
    return experiment


async def experiment_with_flag(
    session: AsyncSession, experiment_id: int, *, lock: bool = False
) -> tuple[Experiment, FeatureFlag | None] | None:
    """The row and its flag in one query, fresh from the database (objects already in the session
    are refreshed). `lock`: the experiment row stays locked for the rest of the transaction on
    PostgreSQL (SQLite locks on write)."""
    row = (await session.exec(_with_flag(experiment_id, lock=lock))).first()
    return (row[0], row[1]) if row is not None else None


def _with_flag(experiment_id: int, *columns: Any, lock: bool = False) -> Any:
    """The experiment, its flag and `columns` (correlated to the experiment), fresh from the
    database. `lock`: the experiment row stays locked for the rest of the transaction on
    PostgreSQL (SQLite locks on write); the flag side of an outer join cannot be."""
    query = (
        select(Experiment, FeatureFlag, *columns)
        .outerjoin(FeatureFlag, col(FeatureFlag.id) == col(Experiment.feature_flag_id))
        .where(Experiment.id == experiment_id)
        .execution_options(populate_existing=True)
    )
    return query.with_for_update(of=Experiment) if lock else query


async def experiment_for_action(
    session: AsyncSession, experiment_id: int
) -> tuple[Experiment, FeatureFlag | None, bool] | None:
    """`experiment_with_flag`, and whether an approved change request was ever applied to the
    experiment: only then can an action be the retry of one (api/experiments/ship.already_applied)."""
    applied = (
        select(ChangeRequest.id)
        .where(col(ChangeRequest.experiment_id) == col(Experiment.id), ChangeRequest.state == "applied")
        .exists()
    )
    row = (await session.exec(_with_flag(experiment_id, applied))).first()
    return (row[0], row[1], bool(row[2])) if row is not None else None


@dataclass(frozen=True)
class TransitionRows:
    """The rows a transition writes, with the counts that tell whether it needs more queries:
    without approval policies in the project no flag change is gated, and without linked saved
    metrics only the inline ones can make a recalculation worth starting."""

    experiment: Experiment
    flag: FeatureFlag | None
    saved_metric_links: int
    approval_policies: int


async def rows_for_transition(session: AsyncSession, experiment_id: int) -> TransitionRows | None:
    """`experiment_with_flag(lock=True)` and both counts in one round trip."""
    links = (
        select(func.count())
        .select_from(ExperimentToSavedMetric)
        .where(col(ExperimentToSavedMetric.experiment_id) == col(Experiment.id))
        .scalar_subquery()
    )
    policies = (
        select(func.count())
        .select_from(ApprovalPolicy)
        .where(col(ApprovalPolicy.team_id) == col(Experiment.team_id))
        .scalar_subquery()
    )
    row = (await session.exec(_with_flag(experiment_id, links, policies, lock=True))).first()
    if row is None:
        return None
    return TransitionRows(row[0], row[1], int(row[2] or 0), int(row[3] or 0))


async def flag_of(session: AsyncSession, experiment: Experiment) -> FeatureFlag | None:
    return await session.get(FeatureFlag, experiment.feature_flag_id)


def facts_of(experiment: Experiment, flag: FeatureFlag | None) -> LifecycleFacts:
    """The lifecycle facts of a row: built by the snapshot, the one builder of them."""
    return ExperimentSnapshot.model_validate(snapshot_fields(experiment, flag)).facts()


def snapshot_fields(experiment: Experiment, flag: FeatureFlag | None) -> dict[str, Any]:
    """The columns the workflow's ExperimentSnapshot is built from."""
    assert experiment.id is not None
    return {
        "project_id": experiment.team_id,
        "experiment_id": experiment.id,
        "name": experiment.name,
        "flag_id": flag.id if flag else None,
        "flag_key": flag.key if flag else None,
        "flag_active": bool(flag and flag.active),
        "flag_deleted": bool(flag and flag.deleted),
        "flag_version": flag.version if flag else 0,
        "flag_variant_keys": flag_variant_keys(flag.filters) if flag else [],
        "start_date": experiment.start_date,
        "end_date": experiment.end_date,
        "archived": experiment.archived,
        "deleted": experiment.deleted,
        "version": experiment.version,
        "scheduling_config": experiment.scheduling_config,
    }


def fingerprint_settings(experiment: Experiment) -> dict[str, Any]:
    """The experiment's inputs to its metrics' fingerprints (domain.fingerprint.with_fingerprints)."""
    return {
        "start_date": experiment.start_date,
        "stats_config": experiment.stats_config,
        "exposure_criteria": experiment.exposure_criteria,
        "only_count_matured_users": experiment.only_count_matured_users,
        "parameters": experiment.parameters,
    }


def refresh_status(experiment: Experiment) -> None:
    """PostHog's save(): the stored status is always recomputed from the dates."""
    experiment.status = stored_status(experiment.start_date, experiment.end_date).value


async def applied_result(session: AsyncSession, op_id: str) -> dict[str, Any] | None:
    applied = await session.get(AppliedOperation, op_id)
    return applied.result if applied is not None else None


async def experiments_by_ids(session: AsyncSession, ids: Sequence[int]) -> Sequence[Experiment]:
    if not ids:
        return []
    return (await session.exec(select(Experiment).where(col(Experiment.id).in_(ids)))).all()


async def activity_of(
    session: AsyncSession, team_id: int, experiment_id: int, *, limit: int, offset: int
) -> tuple[int, Sequence[ExperimentActivity]]:
    base = select(ExperimentActivity).where(
        ExperimentActivity.team_id == team_id, ExperimentActivity.experiment_id == experiment_id
    )
    rows = (
        await session.exec(base.order_by(col(ExperimentActivity.id).desc()).offset(offset).limit(limit))
    ).all()
    count = len((await session.exec(base)).all())
    return count, rows


async def recent_operations(
    session: AsyncSession, experiment_id: int, limit: int = 50
) -> list[AppliedOperation]:
    """The latest operations applied to one experiment, oldest first."""
    rows = (
        await session.exec(
            select(AppliedOperation)
            .where(AppliedOperation.experiment_id == experiment_id)
            .order_by(col(AppliedOperation.created_at).desc())
            .limit(limit)
        )
    ).all()
    return list(reversed(rows))
