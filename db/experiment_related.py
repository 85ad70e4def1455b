"""The rows an experiment's representation shows besides its own (flag, creator, holdout, saved
metrics), loaded for a whole page of experiments in one query per kind, never one per experiment."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import inspect
from sqlalchemy.orm.util import identity_key
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import (
    Experiment,
    ExperimentHoldout,
    ExperimentSavedMetric,
    ExperimentToSavedMetric,
    FeatureFlag,
    User,
)


@dataclass
class Related:
    flags: dict[int, FeatureFlag] = field(default_factory=dict)
    users: dict[int, User] = field(default_factory=dict)
    holdouts: dict[int, ExperimentHoldout] = field(default_factory=dict)
    links: dict[int, list[ExperimentToSavedMetric]] = field(default_factory=dict)
    saved_metrics: dict[int, ExperimentSavedMetric] = field(default_factory=dict)

    def holdout_of(self, experiment: Experiment) -> ExperimentHoldout | None:
        holdout = self.holdouts.get(experiment.holdout_id) if experiment.holdout_id else None
        return holdout if holdout is not None and holdout.team_id == experiment.team_id else None


def _ids(values: Iterable[int | None]) -> list[int]:
    return sorted({value for value in values if value is not None})


Row = TypeVar("Row", FeatureFlag, User, ExperimentHoldout, ExperimentSavedMetric)


async def _by_id(session: AsyncSession, model: type[Row], ids: list[int]) -> dict[int, Row]:
    """Rows this session holds already (the caller's own user, say) are taken as they are: a query
    would return those same objects, unrefreshed."""
    found: dict[int, Row] = {}
    for row_id in ids:
        held = session.identity_map.get(identity_key(model, row_id))
        if isinstance(held, model) and not inspect(held).expired_attributes:
            found[row_id] = held
    missing = [row_id for row_id in ids if row_id not in found]
    if missing:
        rows = (await session.exec(select(model).where(col(model.id).in_(missing)))).all()
        found.update({row.id: row for row in rows if row.id is not None})
    return found


async def load_related(
    session: AsyncSession, experiments: Sequence[Experiment], flags: dict[int, FeatureFlag] | None = None
) -> Related:
    """`flags`: flags the caller has already (by id), not loaded again."""
    known = dict(flags or {})
    missing = [fid for fid in _ids(e.feature_flag_id for e in experiments) if fid not in known]
    known.update(await _by_id(session, FeatureFlag, missing))
    related = Related(flags=known)
    related.users = await _by_id(session, User, _ids(e.created_by_id for e in experiments))
    related.holdouts = await _by_id(session, ExperimentHoldout, _ids(e.holdout_id for e in experiments))
    experiment_ids = _ids(e.id for e in experiments)
    if experiment_ids:
        links = (
            await session.exec(
                select(ExperimentToSavedMetric)
                .where(col(ExperimentToSavedMetric.experiment_id).in_(experiment_ids))
                .order_by(col(ExperimentToSavedMetric.id))
            )
        ).all()
        for link in links:
            related.links.setdefault(link.experiment_id, []).append(link)
        metric_ids = _ids(link.saved_metric_id for link in links)
        related.saved_metrics = await _by_id(session, ExperimentSavedMetric, metric_ids)
    return related
