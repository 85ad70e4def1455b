"""The autopilot's side effects: evaluating the rules against fresh results, and delivering the
decision to a webhook.

`evaluate` computes, as of now, the results of every metric a rule names through the same code
the results query runs (`db.metric_analysis`), decides (`domain.autopilot.decide`) and records
the verdict in `scheduling_config.status.autopilot` (no version bump: the verdict is not a change
of the experiment, and the decision is judged on the version it read). Acting on the decision is
the workflow's: it goes through the same transition path as REST.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx
from pydantic import AwareDatetime, BaseModel
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db import experiments as queries
from db.metric_analysis import analysis_context, experiment_metrics, exposure_results, metric_results
from db.tables import Experiment, ExperimentActivity
from domain.autopilot.decide import Decision, Inputs, MetricData, decide
from domain.autopilot.rules import AutopilotRules, rules_of
from domain.autopilot.timing import with_verdict
from domain.experiment_messages import ExperimentSnapshot
from domain.metric_engine import MetricEngineError, to_micros
from domain.stats import VariantStats, expected_split, parse_stats_config, sample_ratio_mismatch

log = logging.getLogger("flagship.autopilot")
WEBHOOK_TIMEOUT_SECONDS = 10.0


class EvaluateInput(BaseModel):
    project_id: int
    experiment_id: int
    now: AwareDatetime


class Evaluation(BaseModel):
    decision: Decision | None  # None: no rules, or the experiment is not running
    snapshot: ExperimentSnapshot


class DeliverInput(BaseModel):
    project_id: int
    experiment_id: int
    url: str
    delivery_id: str
    payload: dict[str, Any]


def _variants(result: Mapping[str, Any]) -> list[VariantStats]:
    rows = [result.get("baseline"), *(result.get("variant_results") or [])]
    return [VariantStats.from_dict(row) for row in rows if isinstance(row, Mapping)]


def _primary_uuids(experiment: Experiment) -> list[str]:
    ordered = list(experiment.primary_metrics_ordered_uuids or [])
    inline = [m["uuid"] for m in experiment.metrics or [] if isinstance(m, dict) and m.get("uuid")]
    return list(dict.fromkeys([*ordered, *inline]))


def _stop_metric(rules: AutopilotRules, experiment: Experiment) -> str | None:
    if rules.stop is None:
        return None
    if rules.stop.metric is not None:
        return rules.stop.metric
    primary = _primary_uuids(experiment)
    return primary[0] if primary else None


class AutopilotActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    def all(self) -> list[Any]:
        return [self.evaluate, self.deliver]

    @activity.defn(name="autopilot.evaluate")
    async def evaluate(self, inp: EvaluateInput) -> Evaluation:
        async with self.sessionmaker() as session:
            found = await queries.experiment_with_flag(session, inp.experiment_id, lock=True)
            if found is None:
                raise ApplicationError(
                    "The experiment no longer exists.", type="NotFound", non_retryable=True
                )
            experiment, flag = found
            snapshot = ExperimentSnapshot.model_validate(queries.snapshot_fields(experiment, flag))
            rules = rules_of(experiment.scheduling_config)
            if rules is None or snapshot.status.value != "running":
                return Evaluation(decision=None, snapshot=snapshot)
            decision = await self._decide(session, experiment, rules, inp.now)
            experiment.scheduling_config = with_verdict(experiment.scheduling_config, _verdict(decision))
            session.add(experiment)
            await session.commit()
            snapshot = ExperimentSnapshot.model_validate(queries.snapshot_fields(experiment, flag))
            return Evaluation(decision=decision, snapshot=snapshot)

    async def _decide(
        self, session: AsyncSession, experiment: Experiment, rules: AutopilotRules, now: datetime
    ) -> Decision:
        stop_metric = _stop_metric(rules, experiment)
        wanted = list(dict.fromkeys([*rules.metrics, *([stop_metric] if stop_metric else [])]))
        known = {m["uuid"]: m for m in await experiment_metrics(session, experiment)}
        metrics = [known[uuid] for uuid in wanted if uuid in known]
        data, srm = await _measure(session, experiment, metrics, now)
        config = parse_stats_config(experiment.stats_config)
        assert experiment.start_date is not None
        return decide(
            Inputs(
                rules=rules,
                metrics=data,
                stop_metric=stop_metric,
                days_running=(now - experiment.start_date).total_seconds() / 86400,
                srm_p_value=srm.get("p_value") if srm else None,
                srm_mismatch=bool(srm and srm.get("mismatch")),
                alpha=config.alpha,
                tuning_parameter=config.sequential_tuning_parameter,
                now=now,
                version=experiment.version,
            )
        )

    @activity.defn(name="autopilot.deliver")
    async def deliver(self, inp: DeliverInput) -> int:
        """POST the decision; any failure is recorded in the audit trail, then retried by Temporal
        (the same delivery id every time, so the receiver can drop repeats)."""
        attempt = activity.info().attempt
        try:
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as http:
                response = await http.post(
                    inp.url,
                    json=inp.payload,
                    headers={"X-Flagship-Delivery": inp.delivery_id, "User-Agent": "Flagship-Autopilot"},
                )
            if response.status_code >= 300:
                raise RuntimeError(f"the receiver answered {response.status_code}")
        except Exception as error:
            detail = f"webhook delivery {inp.delivery_id} attempt {attempt} failed: {error}"
            await self._record_failure(inp, detail[:1000])
            raise ApplicationError(detail, type="WebhookFailed") from None
        return response.status_code

    async def _record_failure(self, inp: DeliverInput, detail: str) -> None:
        async with self.sessionmaker() as session:
            session.add(
                ExperimentActivity(
                    team_id=inp.project_id,
                    experiment_id=inp.experiment_id,
                    operation="notify",
                    outcome="failed",
                    via="autopilot",
                    detail=detail,
                    operation_id=inp.delivery_id,
                )
            )
            await session.commit()


async def _measure(
    session: AsyncSession, experiment: Experiment, metrics: Sequence[Mapping[str, Any]], now: datetime
) -> tuple[dict[str, MetricData], dict[str, Any] | None]:
    """Each metric's per-variant statistics as of now, and the sample-ratio check of the exposures
    (from a metric's result, or from the exposures alone when no rule names a metric)."""
    out: dict[str, MetricData] = {}
    srm: dict[str, Any] | None = None
    context = await analysis_context(session, experiment, metrics)
    as_of = [to_micros(now) + 1]
    if not metrics:
        exposures = await exposure_results(session, context, as_of[0])
        split = expected_split(context.spec.flag_filters, context.spec.variants)
        return out, sample_ratio_mismatch(exposures.get("total_exposures") or {}, split)
    for metric in metrics:
        try:
            result = (await metric_results(session, context, metric, as_of))[0]
        except MetricEngineError as error:
            log.warning("autopilot: metric %s not evaluated (%s)", metric.get("uuid"), error)
            continue
        srm = srm or result.get("srm")
        out[metric["uuid"]] = MetricData(
            uuid=metric["uuid"],
            metric_type=str(metric.get("metric_type") or "mean"),
            goal=str(metric.get("goal") or "increase"),
            variants=_variants(result),
            name=metric.get("name"),
        )
    return out, srm


def _verdict(decision: Decision) -> dict[str, Any]:
    """What `scheduling_config.status.autopilot` shows: the last verdict and when it was reached."""
    return {
        "at": decision.evaluated_at.isoformat().replace("+00:00", "Z"),
        "summary": decision.summary,
        "action": decision.action,
        "rule": decision.rule,
        "metric": decision.metric,
        "mode": decision.mode,
    }
