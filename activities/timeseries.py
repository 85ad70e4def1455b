"""Timeseries side effects: recalculating a metric's daily series, and the daily refresh.

Each day's row is its own short transaction, upserted on (experiment, metric uuid, query_to), and
`last_successful_date` moves with it; a retried backfill resumes after that date and a re-run of a
day overwrites its row, so every retry is idempotent. The heavy part (one event query, one sweep)
runs once per attempt; writing and heartbeating go day by day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db import timeseries as store
from db.metric_analysis import (
    AnalysisContext,
    analysis_context,
    experiment_metrics,
    metric_fingerprint,
    metric_results,
)
from db.tables import Experiment, ExperimentTimeseriesRecalculation, Project
from domain.autopilot.rules import rules_of
from domain.metric_engine import AnalysisDay, MetricEngineError, analysis_days, last_midnight, to_micros
from domain.timeseries_messages import (
    BackfillInput,
    BackfillResult,
    DailyDiscoverInput,
    DailyOutcome,
    DailyRefreshInput,
    DailyTarget,
    ExperimentRecalculationInput,
)
from observability.metrics import timed_recalculation

log = logging.getLogger("flagship.timeseries")
NOT_STARTED = "Cannot recalculate timeseries for experiment that hasn't started"
STALE_FINGERPRINT = (
    "The experiment's settings changed since this recalculation was requested; request it again "
    "with the metric's current fingerprint"
)


def _permanent(message: str, kind: str) -> ApplicationError:
    """A failure a retry cannot fix (a missing row, a metric the engine refuses)."""
    return ApplicationError(message, type=kind, non_retryable=True)


def _resume_after(recalc: ExperimentTimeseriesRecalculation) -> date | None:
    """Last day already stored: the DB row is the truth; the heartbeat only confirms progress."""
    details = activity.info().heartbeat_details
    beat = date.fromisoformat(details[0]) if details and isinstance(details[0], str) else None
    stored = recalc.last_successful_date
    return max(d for d in (stored, beat) if d is not None) if (stored or beat) else None


class TimeseriesActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.backfill_metric,
            self.prepare_experiment_recalculations,
            self.discover_daily,
            self.refresh_experiment_daily,
        ]

    # ---- backfill -------------------------------------------------------------------------

    @activity.defn(name="timeseries.backfill_metric")
    async def backfill_metric(self, inp: BackfillInput) -> BackfillResult:
        """PostHog's `backfill_experiment_metric`: pending/failed -> in_progress -> completed | failed."""
        async with self.sessionmaker() as session:
            recalc = await store.recalculation(session, inp.recalculation_id)
            if recalc is None:
                raise _permanent(f"Recalculation {inp.recalculation_id} not found", "NotFound")
            await store.set_recalculation(session, recalc.id, "in_progress")
            await session.commit()
        try:
            result = await timed_recalculation("backfill", self._backfill(recalc, inp.now))
        except Exception as exc:
            await self._mark(recalc.id, "failed")
            log.warning("timeseries backfill %s failed: %s", recalc.id, exc)
            if isinstance(exc, MetricEngineError):
                raise _permanent(str(exc), "MetricError") from None
            raise
        await self._mark(recalc.id, "completed")
        return result

    async def _mark(self, recalculation_id: str, status: str) -> None:
        async with self.sessionmaker() as session:
            await store.set_recalculation(session, recalculation_id, status)
            await session.commit()

    async def _backfill(self, recalc: ExperimentTimeseriesRecalculation, now: datetime) -> BackfillResult:
        async with self.sessionmaker() as session:
            experiment = await session.get(Experiment, recalc.experiment_id)
            if experiment is None or experiment.start_date is None:
                raise MetricEngineError(NOT_STARTED)
            if metric_fingerprint(experiment, recalc.metric) != recalc.fingerprint:
                # Rows are keyed by the requested fingerprint: computed under other settings (say
                # CUPED since switched on), they would be served as that fingerprint's series.
                raise MetricEngineError(STALE_FINGERPRINT)
            context = await analysis_context(session, experiment, [recalc.metric])
            days = analysis_days(context.start_date, context.end_date, now, context.timezone)
            resume = _resume_after(recalc)
            todo = [d for d in days if resume is None or d.day > resume]
            results = await metric_results(session, context, recalc.metric, [d.as_of for d in todo])
        for day, result in zip(todo, results, strict=True):
            await self._store_day(recalc, context, day, result)
            activity.heartbeat(day.day.isoformat())
        return BackfillResult(
            recalculation_id=recalc.id,
            experiment_id=recalc.experiment_id,
            metric_uuid=str(recalc.metric.get("uuid")),
            days_processed=len(todo),
            start_date=days[0].day if days else None,
            end_date=days[-1].day if days else None,
        )

    async def _store_day(
        self,
        recalc: ExperimentTimeseriesRecalculation,
        context: AnalysisContext,
        day: AnalysisDay,
        result: Any,
    ) -> None:
        async with self.sessionmaker() as session:
            await store.upsert_result(
                session,
                experiment_id=recalc.experiment_id,
                metric_uuid=str(recalc.metric.get("uuid")),
                fingerprint=recalc.fingerprint,
                query_from=context.start_date,
                query_to=day.query_to,
                result=result,
            )
            await store.set_recalculation(session, recalc.id, "in_progress", last_successful_date=day.day)
            await session.commit()

    # ---- launch / end: recalculate every metric ---------------------------------------------

    @activity.defn(name="timeseries.prepare_experiment_recalculations")
    async def prepare_experiment_recalculations(self, inp: ExperimentRecalculationInput) -> list[str]:
        """A pending recalculation per metric without an active one; returns the new ids.

        A fingerprint that already has an active request is left to it, as the POST endpoint does.
        """
        created: list[str] = []
        async with self.sessionmaker() as session:
            experiment = await session.get(Experiment, inp.experiment_id)
            if experiment is None or experiment.team_id != inp.project_id or experiment.start_date is None:
                return created
            metrics = await experiment_metrics(session, experiment)
        for metric in metrics:
            recalc_id = await self._request(experiment, metric)
            if recalc_id is not None:
                created.append(recalc_id)
        return created

    async def _request(self, experiment: Experiment, metric: dict[str, Any]) -> str | None:
        assert experiment.id is not None
        fingerprint = metric_fingerprint(experiment, metric)
        async with self.sessionmaker() as session:
            if await store.active_recalculation(session, experiment.id, fingerprint) is not None:
                return None
            try:
                row = await store.create_recalculation(
                    session, experiment.team_id, experiment.id, metric, fingerprint
                )
                await session.commit()
            except IntegrityError:
                return None  # another request for this fingerprint became active meanwhile
            return row.id

    # ---- daily refresh ----------------------------------------------------------------------

    @activity.defn(name="timeseries.discover_daily")
    async def discover_daily(self, inp: DailyDiscoverInput) -> list[DailyTarget]:
        async with self.sessionmaker() as session:
            found = await store.running_experiments_at_hour(session, inp.hour, inp.now)
        return [DailyTarget(project_id=team, experiment_id=eid) for team, eid in found]

    @activity.defn(name="timeseries.refresh_experiment_daily")
    async def refresh_experiment_daily(self, inp: DailyRefreshInput) -> DailyOutcome:
        """Each metric's result for the last complete day, as one upserted row per metric and day.

        `query_to` is the most recent local midnight, so the row is keyed exactly like the
        backfill's row for that day and a repeated run overwrites instead of adding rows.
        """
        outcome = DailyOutcome(experiment_id=inp.target.experiment_id)
        async with self.sessionmaker() as session:
            experiment = await session.get(Experiment, inp.target.experiment_id)
            if experiment is None or experiment.start_date is None:
                return outcome
            metrics = await experiment_metrics(session, experiment)
        outcome.autopilot = rules_of(experiment.scheduling_config) is not None
        for metric in metrics:
            if await timed_recalculation("daily", self._refresh_metric(experiment, metric, inp.now)):
                outcome.succeeded += 1
            else:
                outcome.failed += 1
        return outcome

    async def _refresh_metric(self, experiment: Experiment, metric: dict[str, Any], now: datetime) -> bool:
        assert experiment.id is not None and experiment.start_date is not None
        async with self.sessionmaker() as session:
            project = await session.get(Project, experiment.team_id)
            query_to = last_midnight(now, project.timezone if project else "UTC")
            if query_to <= experiment.start_date:
                return True  # not one whole day yet: nothing to store
            result: dict[str, Any] | None = None
            error: str | None = None
            try:
                context = await analysis_context(session, experiment, [metric])
                result = (await metric_results(session, context, metric, [to_micros(query_to)]))[0]
            except Exception as exc:  # stored as a failed day, as upstream does; other metrics still run
                error = str(exc) or type(exc).__name__
                await session.rollback()  # a database error leaves the transaction unusable
            await store.upsert_result(
                session,
                experiment_id=experiment.id,
                metric_uuid=str(metric["uuid"]),
                fingerprint=metric_fingerprint(experiment, metric),
                query_from=experiment.start_date,
                query_to=query_to,
                result=result,
                error=error,
            )
            await session.commit()
        return error is None
