"""Analysing an experiment's metric from stored events: the one code path the results query, the
timeseries backfill, the daily refresh and the benchmark all run.

Load the experiment's facts once (`analysis_context`), load the events the metric needs in one query
(`db.metric_events`), then run the pure engine in a thread (`domain.metric_engine`). With
EVENTS_BACKEND=clickhouse the session carries the ClickHouse backend (`db.engine.make_sessionmaker`),
which computes the same per-variant statistics in ClickHouse instead (`db.clickhouse`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.clickhouse.store import ClickHouseEvents
from db.engine import EVENTS_BACKEND_KEY
from db.experiment_assets import links_of, saved_metrics_by_ids
from db.metric_events import load_events
from db.tables import Action, Experiment, FeatureFlag, Project
from domain.fingerprint import compute_metric_fingerprint
from domain.flag_rules import flag_variant_keys
from domain.metric_engine import (
    ExperimentSpec,
    MetricEngineError,
    events_start,
    exposure_counts,
    exposure_query_needs,
    metric_needs,
    metric_series,
    to_micros,
)
from domain.metric_engine.needs import action_ids
from domain.metric_engine.spec import ActionSteps

NOT_STARTED = "Experiment has not been started yet"


@dataclass(frozen=True)
class AnalysisContext:
    """An experiment as analysed: its spec plus the row facts callers report alongside results."""

    spec: ExperimentSpec
    team_id: int
    experiment_id: int
    start_date: datetime
    end_date: datetime | None
    timezone: str


async def actions_of(session: AsyncSession, team_id: int, ids: set[int]) -> dict[int, ActionSteps]:
    if not ids:
        return {}
    rows = (
        await session.exec(
            select(Action).where(
                Action.team_id == team_id, col(Action.id).in_(ids), col(Action.deleted).is_(False)
            )
        )
    ).all()
    return {row.id: tuple(row.steps or ()) for row in rows if row.id is not None}


def experiment_spec(
    experiment: Experiment, flag: FeatureFlag, project: Project, actions: dict[int, ActionSteps]
) -> ExperimentSpec:
    """The experiment as the engine analyses it (one rule for one experiment or a page of them)."""
    if experiment.start_date is None:
        raise MetricEngineError(NOT_STARTED)
    if (flag.filters or {}).get("aggregation_group_type_index") is not None:
        # Entities are distinct ids; counting a group-aggregated flag per user would be wrong.
        raise MetricEngineError("Experiments on group-aggregated flags are not supported yet")
    return ExperimentSpec(
        flag_key=flag.key,
        variant_keys=tuple(flag_variant_keys(flag.filters)),
        start=to_micros(experiment.start_date),
        end=to_micros(experiment.end_date) if experiment.end_date is not None else None,
        holdout_id=experiment.holdout_id,
        exposure_criteria=experiment.exposure_criteria,
        stats_config=experiment.stats_config,
        only_count_matured_users=experiment.only_count_matured_users,
        excluded_variants=tuple((experiment.parameters or {}).get("excluded_variants") or ()),
        timezone=project.timezone,
        actions=actions,
        flag_filters=flag.filters,
    )


def exposure_config(experiment: Experiment) -> dict[str, Any] | None:
    criteria = experiment.exposure_criteria or {}
    config = criteria.get("exposure_config")
    return config if isinstance(config, dict) else None


async def analysis_context(
    session: AsyncSession, experiment: Experiment, metrics: Sequence[Mapping[str, Any]] = ()
) -> AnalysisContext:
    """The spec for `experiment`, resolving the actions `metrics` and the exposure refer to."""
    if experiment.start_date is None or experiment.id is None:
        raise MetricEngineError(NOT_STARTED)
    flag = await session.get(FeatureFlag, experiment.feature_flag_id)
    project = await session.get(Project, experiment.team_id)
    if flag is None or project is None:
        raise MetricEngineError("The experiment's feature flag no longer exists")
    ids = action_ids(metrics, exposure_config(experiment))
    spec = experiment_spec(experiment, flag, project, await actions_of(session, experiment.team_id, ids))
    return AnalysisContext(
        spec, experiment.team_id, experiment.id, experiment.start_date, experiment.end_date, project.timezone
    )


def events_backend(session: AsyncSession) -> ClickHouseEvents | None:
    """The ClickHouse backend this process was configured with, or None (events in this database)."""
    backend = session.info.get(EVENTS_BACKEND_KEY)
    return backend if isinstance(backend, ClickHouseEvents) else None


def _until(spec: ExperimentSpec, as_of: Sequence[int]) -> int:
    """Exclusive upper bound of the one event query: the last boundary, or just past the end."""
    last = max(as_of)
    return min(last, spec.end + 1) if spec.end is not None else last


async def metric_results(
    session: AsyncSession, context: AnalysisContext, metric: Mapping[str, Any], as_of: Sequence[int]
) -> list[dict[str, Any]]:
    """Results as of each boundary (ascending µs), from one event query and one sweep.

    With CUPED the query starts `lookback_days` before the experiment, for the covariate.
    """
    spec = context.spec
    if not as_of:
        return []
    clickhouse = events_backend(session)
    if clickhouse is not None:
        return await clickhouse.metric_results(context.team_id, spec, metric, as_of)
    needs = metric_needs(spec, metric)  # validates the metric before any I/O
    start = events_start(spec, metric)
    events = await load_events(session, context.team_id, needs, start, _until(spec, as_of))
    return await asyncio.to_thread(metric_series, spec, metric, events, list(as_of))


async def exposure_results(session: AsyncSession, context: AnalysisContext, as_of: int) -> dict[str, Any]:
    spec = context.spec
    clickhouse = events_backend(session)
    if clickhouse is not None:
        return await clickhouse.exposure_results(context.team_id, spec, as_of)
    events = await load_events(
        session, context.team_id, exposure_query_needs(spec), spec.start, _until(spec, [as_of])
    )
    return await asyncio.to_thread(exposure_counts, events, spec, as_of)


def metric_fingerprint(experiment: Experiment, metric: Mapping[str, Any]) -> str:
    """The fingerprint the experiment's current settings give this metric (reference §1.10)."""
    return compute_metric_fingerprint(
        metric,
        experiment.start_date,
        (experiment.stats_config or {}).get("method") or "bayesian",
        experiment.exposure_criteria,
        experiment.only_count_matured_users,
        (experiment.parameters or {}).get("excluded_variants") or [],
        stats_config=experiment.stats_config,
    )


async def experiment_metrics(session: AsyncSession, experiment: Experiment) -> list[dict[str, Any]]:
    """Inline primary and secondary metrics, then linked saved metrics, each with a uuid."""
    assert experiment.id is not None
    links = await links_of(session, experiment.id)
    saved = await saved_metrics_by_ids(session, experiment.team_id, [link.saved_metric_id for link in links])
    shared = [dict(row.query) for row in saved.values() if isinstance(row.query, dict)]
    return [*_inline_metrics(experiment), *(m for m in shared if m.get("uuid"))]


async def has_metrics(session: AsyncSession, experiment: Experiment, saved_metric_links: int) -> bool:
    """Whether `experiment_metrics` returns any, without querying when the row already says."""
    if _inline_metrics(experiment):
        return True
    return saved_metric_links > 0 and bool(await experiment_metrics(session, experiment))


def _inline_metrics(experiment: Experiment) -> list[dict[str, Any]]:
    metrics = [*(experiment.metrics or []), *(experiment.metrics_secondary or [])]
    return [m for m in metrics if isinstance(m, dict) and m.get("uuid")]
