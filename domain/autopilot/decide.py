"""One evaluation of an experiment's autopilot rules: a decision with its evidence.

Order: guardrails first (harm is acted on even when the data is otherwise in doubt), then the
sample-ratio check, then the win rule. A win is never called on a sample-ratio mismatch, whatever
the `srm` rule says: the assignment is broken, so the comparison is too. Every comparison is the
always-valid one (`domain.stats.sequential_relative_comparisons`: sequential confidence sequence,
Holm across the metric's test variants), so asking every day does not inflate false positives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from domain.autopilot.rules import AutopilotRules, Guardrail, StopRule
from domain.stats.decisions import SequentialComparison, Verdict, sequential_relative_comparisons
from domain.stats.errors import StatisticError
from domain.stats.sufficient import VariantStats

Action = Literal["none", "pause", "ship_control", "ship_variant", "end", "notify"]
Rule = Literal["guardrail", "srm", "stop_when_significant"]


class VariantEvidence(BaseModel):
    key: str
    n: int
    estimate: float | None  # the variant's mean (per exposed entity)
    relative_change: float | None = None  # against control, a fraction
    interval: list[float] | None = None  # always-valid interval of the relative change
    p_value: float | None = None
    holm_p_value: float | None = None
    verdict: str | None = None


class MetricEvidence(BaseModel):
    metric: str
    name: str | None = None
    goal: str
    variants: list[VariantEvidence] = Field(default_factory=list)


class Decision(BaseModel):
    """What one evaluation concluded (and in `shadow` mode, would have done)."""

    action: Action = "none"
    rule: Rule | None = None
    metric: str | None = None
    variant_key: str | None = None  # ship_variant: the winner; ship_control: "control"
    conclusion: str | None = None
    summary: str
    evidence: list[MetricEvidence] = Field(default_factory=list)
    srm_p_value: float | None = None
    srm_mismatch: bool = False
    evaluated_at: AwareDatetime
    judged_version: int = 0  # the experiment row's version the decision was judged on
    mode: Literal["act", "shadow"] = "act"

    @property
    def acts(self) -> bool:
        return self.action != "none"


@dataclass(frozen=True)
class MetricData:
    """What the activity measured for one metric the rules name."""

    uuid: str
    metric_type: str
    goal: str  # increase | decrease
    variants: Sequence[VariantStats]
    name: str | None = None


@dataclass(frozen=True)
class Inputs:
    rules: AutopilotRules
    metrics: Mapping[str, MetricData]  # by uuid: every metric a rule names (the stop's resolved)
    stop_metric: str | None  # the stop rule's metric, its default resolved
    days_running: float
    srm_p_value: float | None
    srm_mismatch: bool
    alpha: float
    tuning_parameter: float
    now: datetime
    version: int


def _comparisons(data: MetricData, inputs: Inputs) -> dict[str, SequentialComparison | None]:
    try:
        return sequential_relative_comparisons(
            data.metric_type,
            data.variants,
            goal=data.goal,
            alpha=inputs.alpha,
            tuning_parameter=inputs.tuning_parameter,
        )
    except (StatisticError, ValueError):
        return {}


def _evidence(data: MetricData, comparisons: Mapping[str, SequentialComparison | None]) -> MetricEvidence:
    variants = []
    for stats in data.variants:
        found = comparisons.get(stats.key)
        mean = stats.sum / stats.number_of_samples if stats.number_of_samples else None
        variants.append(
            VariantEvidence(key=stats.key, n=stats.number_of_samples, estimate=mean)
            if found is None
            else VariantEvidence(
                key=stats.key,
                n=stats.number_of_samples,
                estimate=mean,
                relative_change=found.relative_change,
                interval=[found.interval[0], found.interval[1]],
                p_value=found.p_value,
                holm_p_value=found.holm_p_value,
                verdict=found.verdict.value,
            )
        )
    return MetricEvidence(metric=data.uuid, name=data.name, goal=data.goal, variants=variants)


def _harmful(comparison: SequentialComparison, goal: str, max_regression: float) -> bool:
    """The whole interval lies on the harmful side, beyond the tolerated regression."""
    low, high = comparison.interval
    return high < -max_regression if goal != "decrease" else low > max_regression


def _pct(value: float) -> str:
    return f"{value * 100:+.1f}%"


def _interval_text(comparison: SequentialComparison) -> str:
    return f"[{_pct(comparison.interval[0])}, {_pct(comparison.interval[1])}]"


@dataclass
class _Evaluation:
    inputs: Inputs
    evidence: dict[str, MetricEvidence]
    comparisons: dict[str, dict[str, SequentialComparison | None]]

    def decision(self, summary: str, **fields: object) -> Decision:
        return Decision(
            summary=summary,
            evidence=list(self.evidence.values()),
            srm_p_value=self.inputs.srm_p_value,
            srm_mismatch=self.inputs.srm_mismatch,
            evaluated_at=self.inputs.now,
            judged_version=self.inputs.version,
            mode=self.inputs.rules.mode,
            **fields,  # type: ignore[arg-type]
        )

    def guardrail(self, rule: Guardrail) -> Decision | None:
        data = self.inputs.metrics.get(rule.metric)
        if data is None:
            return None
        for key, comparison in self.comparisons[rule.metric].items():
            if comparison is not None and _harmful(comparison, data.goal, rule.max_regression):
                summary = (
                    f"guardrail tripped: {key} changes {data.name or rule.metric} by "
                    f"{_pct(comparison.relative_change)} (interval {_interval_text(comparison)}), "
                    f"beyond the tolerated {_pct(-rule.max_regression if data.goal != 'decrease' else rule.max_regression)}"
                )
                shipping = rule.action == "ship_control"
                return self.decision(
                    summary,
                    action=rule.action,
                    rule="guardrail",
                    metric=rule.metric,
                    variant_key="control" if shipping else None,
                    conclusion="lost" if shipping else None,
                )
        return None

    def srm(self) -> Decision | None:
        rules = self.inputs.rules
        if not self.inputs.srm_mismatch or rules.srm is None:
            return None
        summary = (
            f"sample-ratio mismatch: exposures do not follow the split (p = {self.inputs.srm_p_value:.2g})"
        )
        return self.decision(summary, action=rules.srm, rule="srm")

    def stop(self, rule: StopRule, metric: str) -> Decision:
        data = self.inputs.metrics[metric]
        comparisons = self.comparisons[metric]
        judged = {k: c for k, c in comparisons.items() if c is not None}
        if self.inputs.days_running < rule.min_days:
            return self.decision(
                f"no decision yet: {self.inputs.days_running:.1f} of the {rule.min_days:g} days the rule waits for"
            )
        if self.inputs.srm_mismatch:
            return self.decision("no decision: a sample-ratio mismatch makes the comparison untrustworthy")
        better = [c for c in judged.values() if c.verdict is Verdict.BETTER]
        worse = [c for c in judged.values() if c.verdict is Verdict.WORSE]
        if rule.action == "ship_winner" and better:
            best = max(
                better, key=lambda c: -c.relative_change if data.goal == "decrease" else c.relative_change
            )
            summary = f"{best.key} wins: {_pct(best.relative_change)} (interval {_interval_text(best)})"
            return self.decision(
                summary, action="ship_variant", rule="stop_when_significant", metric=metric,
                variant_key=best.key, conclusion="won",
            )  # fmt: skip
        if rule.action == "end" and (better or worse):
            first = (better or worse)[0]
            conclusion = "won" if better else "lost"
            summary = f"{first.key} is significant: {_pct(first.relative_change)} (interval {_interval_text(first)})"
            return self.decision(
                summary, action="end", rule="stop_when_significant", metric=metric, conclusion=conclusion
            )
        return self.decision(_undecided(judged))


def _undecided(judged: Mapping[str, SequentialComparison]) -> str:
    if not judged:
        return "no decision yet: not enough data to compare the variants"
    parts = [f"{key}: interval {_interval_text(c)} includes 0" for key, c in judged.items()]
    return "no decision yet: " + "; ".join(parts)


def decide(inputs: Inputs) -> Decision:
    """The one decision of this evaluation (action `none` when no rule fires)."""
    comparisons = {uuid: _comparisons(data, inputs) for uuid, data in inputs.metrics.items()}
    evidence = {uuid: _evidence(data, comparisons[uuid]) for uuid, data in inputs.metrics.items()}
    evaluation = _Evaluation(inputs, evidence, comparisons)
    for guardrail in inputs.rules.guardrails:
        tripped = evaluation.guardrail(guardrail)
        if tripped is not None:
            return tripped
    srm = evaluation.srm()
    if srm is not None:
        return srm
    stop_metric = inputs.stop_metric
    if inputs.rules.stop is not None and stop_metric is not None and stop_metric in inputs.metrics:
        return evaluation.stop(inputs.rules.stop, stop_metric)
    return evaluation.decision("no rule fired: guardrails hold and the split is as configured")
