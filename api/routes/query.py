"""`POST /api/projects/{id}/query/` for the two experiment queries PostHog clients send
(posthog-clients.md §7.2 item 6): `ExperimentQuery` (current results of one metric) and
`ExperimentExposureQuery` (cumulative exposures per variant and day).

Results are computed on request from the stored events, as of now, by the same code the
timeseries backfill runs; nothing is cached, so `refresh` is accepted and ignored.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Body, Depends, Path, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext, SessionDep, authenticate, plain_project_id, resolve_project
from api.errors import not_found, permission_denied
from api.query_limits import QueryLimiter
from api.render import bad_request
from api.routing import FlexRouter
from db import experiments as queries
from db.metric_analysis import AnalysisContext, analysis_context, exposure_results, metric_results
from db.tables import Experiment
from db.types import utcnow
from domain.flag_rules import flag_variant_keys
from domain.keys import scopes_allow
from domain.metric_engine import MetricEngineError, to_micros

router = FlexRouter(tags=["query"])

QUERY_SCOPES = ("query:read", "experiment:read")


class QueryAuth:
    """PostHog's query endpoint needs `query:read`; experiment tools hold `experiment:read`, which
    Flagship accepts too, since these queries only read experiment data."""

    async def __call__(
        self, request: Request, session: SessionDep, project_id: Annotated[str, Path()]
    ) -> ProjectContext:
        principal = await authenticate(request, session, plain_project_id(project_id))
        if principal.secret_project is not None:
            raise permission_denied("This action does not support Project Secret API Key access")
        if not any(scopes_allow(principal.scopes, scope) for scope in QUERY_SCOPES):
            raise permission_denied(f"API key missing required scope '{QUERY_SCOPES[0]}'")
        project = await resolve_project(session, principal, project_id)
        assert project.id is not None
        return ProjectContext(principal, project, project_id=project.id, project_timezone=project.timezone)


READ = Depends(QueryAuth())


async def _experiment(session: AsyncSession, ctx: ProjectContext, query: dict[str, Any]) -> Experiment:
    raw = query.get("experiment_id")
    if raw is None:
        raise bad_request("experiment_id is required")
    try:
        experiment_id = int(raw)
    except (TypeError, ValueError):
        raise bad_request("experiment_id must be an integer") from None
    experiment = await queries.experiment_by_id(session, ctx.project_id, experiment_id)
    if experiment is None:
        raise not_found()
    return experiment


async def _experiment_query(
    session: AsyncSession, ctx: ProjectContext, query: dict[str, Any]
) -> dict[str, Any]:
    metric = query.get("metric")
    if not isinstance(metric, dict):
        raise bad_request("metric is required")
    experiment = await _experiment(session, ctx, query)
    if experiment.start_date is None:
        raise bad_request("Experiment has not been started yet")
    try:
        context = await analysis_context(session, experiment, [metric])
        return (await metric_results(session, context, metric, [to_micros(utcnow()) + 1]))[0]
    except MetricEngineError as exc:
        raise bad_request(str(exc)) from None


def _when(value: Any, fallback: int | None) -> int | None:
    """An ISO date from the query (naive = UTC, as PostHog reads them), else the stored value."""
    if not isinstance(value, str) or not value:
        return fallback
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"Invalid date: {value!r}") from None
    return to_micros(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _with_query_overrides(context: AnalysisContext, query: dict[str, Any]) -> AnalysisContext:
    """The exposure query carries the flag, criteria, dates and holdout it wants (upstream reads them
    from the query); unset fields fall back to the stored experiment."""
    spec = context.spec
    raw_flag, holdout = query.get("feature_flag"), query.get("holdout")
    flag: dict[str, Any] = raw_flag if isinstance(raw_flag, dict) else {}
    # The dates may narrow the experiment's window, never widen it: a caller cannot make the
    # analysis read events from before the launch or after the end.
    start = max(_when(query.get("start_date"), spec.start) or spec.start, spec.start)
    end = _when(query.get("end_date"), spec.end) if query.get("end_date") else spec.end
    if end is not None and spec.end is not None:
        end = min(end, spec.end)
    changes: dict[str, Any] = {"flag_key": str(flag.get("key") or spec.flag_key), "start": start, "end": end}
    if isinstance(flag.get("filters"), dict):
        changes["variant_keys"] = tuple(flag_variant_keys(flag["filters"]))
    if isinstance(query.get("exposure_criteria"), dict):
        changes["exposure_criteria"] = query["exposure_criteria"]
    if "holdout" in query:
        changes["holdout_id"] = (
            int(holdout["id"]) if isinstance(holdout, dict) and holdout.get("id") else None
        )
    return dataclasses.replace(context, spec=dataclasses.replace(spec, **changes))


def _empty_exposures() -> dict[str, Any]:
    """A draft experiment: upstream answers with no series and an open date range."""
    return {
        "kind": "ExperimentExposureQuery",
        "timeseries": [],
        "total_exposures": {},
        "date_range": {"date_from": None, "date_to": None, "explicitDate": True},
    }


async def _exposure_query(
    session: AsyncSession, ctx: ProjectContext, query: dict[str, Any]
) -> dict[str, Any]:
    experiment = await _experiment(session, ctx, query)
    if experiment.start_date is None:
        return _empty_exposures()
    try:
        context = _with_query_overrides(await analysis_context(session, experiment), query)
        return await exposure_results(session, context, to_micros(utcnow()) + 1)
    except MetricEngineError as exc:
        raise bad_request(str(exc)) from None


RESULT_EXTRAS = (
    "An ExperimentQuery result is PostHog's `ExperimentQueryResponse` plus Flagship's statistics: a "
    "top-level `srm` (`p_value`, `chi_square`, `mismatch` at p < 0.001, `expected` and `observed` "
    "exposures per variant, holdout included) and, per test variant, `adjusted_p_value` and "
    "`adjusted_significant` (the `stats_config.multiple_comparison_correction`, null without one) "
    "and `variance_reduction` (with `stats_config.cuped.enabled`). With "
    "`stats_config.frequentist.sequential_testing_enabled`, `confidence_interval` and `p_value` are "
    "the always-valid sequential ones."
)


@router.post(
    "/query/",
    summary="Run an experiment query (ExperimentQuery, ExperimentExposureQuery)",
    description=RESULT_EXTRAS,
)
async def run_query(
    request: Request, ctx: Annotated[ProjectContext, READ], body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    """Bounded (api/query_limits.py): over the concurrency limit 429, past the time limit 503."""
    query = body.get("query") if isinstance(body, dict) else None
    if not isinstance(query, dict):
        raise bad_request("query is required", attr="query")
    kind = query.get("kind")
    limiter: QueryLimiter = request.app.state.query_limiter
    if kind == "ExperimentQuery":
        return await limiter.run(lambda session: _experiment_query(session, ctx, query))
    if kind == "ExperimentExposureQuery":
        return await limiter.run(lambda session: _exposure_query(session, ctx, query))
    raise bad_request(
        f"Unsupported query kind: {kind!r}. Flagship answers ExperimentQuery and ExperimentExposureQuery."
    )
