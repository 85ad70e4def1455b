"""Exposures of a page of experiments at once (the console's list; README "Web console").

Two statements whatever the page size: the page's experiments with their flags, then ONE event
query for everything their exposures read (`db.metric_events`, the union of their needs over the
union of their windows). Each experiment is then counted by the same pure code as
`ExperimentExposureQuery` (`domain.metric_engine.exposure_counts`), so the list and the results
page agree to the unit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import reduce

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.metric_analysis import actions_of, experiment_spec, exposure_config
from db.metric_events import load_events
from db.tables import Experiment, FeatureFlag, Project
from domain.metric_engine import EventColumns, ExperimentSpec, MetricEngineError, exposure_counts
from domain.metric_engine import exposure_query_needs as needs_of
from domain.metric_engine.needs import action_ids


async def _specs(session: AsyncSession, team_id: int, ids: Sequence[int]) -> dict[int, ExperimentSpec]:
    project = await session.get(Project, team_id)
    if project is None or not ids:
        return {}
    rows = (
        await session.exec(
            select(Experiment, FeatureFlag)
            .join(FeatureFlag, col(FeatureFlag.id) == col(Experiment.feature_flag_id))
            .where(
                Experiment.team_id == team_id,
                col(Experiment.id).in_(ids),
                col(Experiment.deleted).is_(False),
                col(Experiment.start_date).is_not(None),
            )
        )
    ).all()
    wanted = set().union(*(action_ids([], exposure_config(e)) for e, _ in rows))
    actions = await actions_of(session, team_id, wanted)
    specs: dict[int, ExperimentSpec] = {}
    for experiment, flag in rows:
        try:
            specs[int(experiment.id or 0)] = experiment_spec(experiment, flag, project, actions)
        except MetricEngineError:
            continue  # not analysable (a group-aggregated flag): no count rather than a wrong one
    return specs


def _totals(events: EventColumns, specs: dict[int, ExperimentSpec], as_of: int) -> dict[int, dict[str, int]]:
    return {eid: exposure_counts(events, spec, as_of)["total_exposures"] for eid, spec in specs.items()}


async def exposures_of(
    session: AsyncSession, team_id: int, ids: Sequence[int], as_of: int
) -> dict[int, dict[str, int]]:
    """Exposures per variant (`$multiple` included when present) as of `as_of` (µs), by experiment id;
    drafts and experiments that cannot be analysed are left out."""
    specs = await _specs(session, team_id, ids)
    if not specs:
        return {}
    needs = reduce(lambda a, b: a | b, (needs_of(spec) for spec in specs.values()))
    start = min(spec.start for spec in specs.values())
    ends = [spec.end for spec in specs.values()]
    until = as_of if any(end is None for end in ends) else min(as_of, max(e for e in ends if e) + 1)
    events = await load_events(session, team_id, needs, start, until)
    return await asyncio.to_thread(_totals, events, specs, as_of)
