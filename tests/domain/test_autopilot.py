"""The autopilot's rules (domain/autopilot/rules.py) and its one decision per evaluation
(domain/autopilot/decide.py), on sufficient statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.autopilot.decide import Inputs, MetricData, decide
from domain.autopilot.rules import (
    AutopilotRules,
    check_metrics_kept,
    parse_rules,
    remap_autopilot,
    validate_autopilot,
)
from domain.autopilot.timing import next_evaluation, with_verdict
from domain.errors import ValidationFailed
from domain.stats import VariantStats

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
WIN, GUARD = "metric-win", "metric-guard"


def binary(key: str, n: int, rate: float) -> VariantStats:
    conversions = round(n * rate)
    return VariantStats(key, n, float(conversions), float(conversions))


def inputs(
    rules: dict[str, Any],
    metrics: dict[str, list[VariantStats]],
    goals: dict[str, str] | None = None,
    **extra: Any,
) -> Inputs:
    parsed = parse_rules(rules)
    data = {
        uuid: MetricData(uuid=uuid, metric_type="mean", goal=(goals or {}).get(uuid, "increase"), variants=v)
        for uuid, v in metrics.items()
    }
    base: dict[str, Any] = {
        "rules": parsed,
        "metrics": data,
        "stop_metric": (parsed.stop.metric if parsed.stop and parsed.stop.metric else WIN),
        "days_running": 10.0,
        "srm_p_value": 0.5,
        "srm_mismatch": False,
        "alpha": 0.05,
        "tuning_parameter": 5000.0,
        "now": NOW,
        "version": 7,
    }
    return Inputs(**(base | extra))


STOP = {"stop_when_significant": {"metric": WIN, "min_days": 7, "action": "ship_winner"}}


def test_a_clear_winner_is_shipped_with_its_evidence() -> None:
    decision = decide(inputs(STOP, {WIN: [binary("control", 4000, 0.10), binary("test", 4000, 0.14)]}))
    assert (decision.action, decision.variant_key, decision.conclusion) == ("ship_variant", "test", "won")
    assert decision.rule == "stop_when_significant" and decision.metric == WIN
    assert decision.judged_version == 7 and decision.evaluated_at == NOW
    test = next(v for v in decision.evidence[0].variants if v.key == "test")
    assert test.n == 4000 and test.interval is not None and test.interval[0] > 0
    assert test.p_value is not None and test.holm_p_value is not None and test.verdict == "better"
    assert decision.summary.startswith("test wins: +40.0%")


def test_nothing_happens_without_evidence_or_before_min_days() -> None:
    even = {WIN: [binary("control", 4000, 0.10), binary("test", 4000, 0.101)]}
    decision = decide(inputs(STOP, even))
    assert decision.action == "none" and "includes 0" in decision.summary
    early = decide(
        inputs(STOP, {WIN: [binary("control", 4000, 0.10), binary("test", 4000, 0.14)]}, days_running=3)
    )
    assert early.action == "none" and early.summary.startswith("no decision yet: 3.0 of the 7 days")


def test_end_concludes_by_the_sign_and_goal_decrease_flips_better() -> None:
    rules = {"stop_when_significant": {"metric": WIN, "min_days": 0, "action": "end"}}
    lower = {WIN: [binary("control", 4000, 0.14), binary("test", 4000, 0.10)]}
    assert decide(inputs(rules, lower)).conclusion == "lost"
    assert decide(inputs(rules, lower, {WIN: "decrease"})).conclusion == "won"
    shipping = {"stop_when_significant": {"metric": WIN, "min_days": 0}}
    assert decide(inputs(shipping, lower)).action == "none"  # nothing better: harm is the guardrails' job


def test_guardrails_come_first_and_honour_the_tolerance() -> None:
    rules = STOP | {"guardrails": [{"metric": GUARD, "max_regression": 0.02, "action": "ship_control"}]}
    metrics = {
        WIN: [binary("control", 4000, 0.10), binary("test", 4000, 0.14)],
        GUARD: [binary("control", 4000, 0.50), binary("test", 4000, 0.40)],
    }
    decision = decide(inputs(rules, metrics))
    assert (decision.action, decision.rule, decision.variant_key, decision.conclusion) == (
        "ship_control", "guardrail", "control", "lost",
    )  # fmt: skip
    assert [e.metric for e in decision.evidence] == [WIN, GUARD]
    tolerant = rules | {"guardrails": [{"metric": GUARD, "max_regression": 0.5}]}
    assert decide(inputs(tolerant, metrics)).action == "ship_variant"  # -20% is within 50%


def test_a_sample_ratio_mismatch_blocks_a_win_and_trips_its_rule() -> None:
    winner = {WIN: [binary("control", 4000, 0.10), binary("test", 4000, 0.14)]}
    blocked = decide(inputs(STOP, winner, srm_mismatch=True, srm_p_value=1e-9))
    assert blocked.action == "none" and "sample-ratio mismatch" in blocked.summary
    paused = decide(inputs(STOP | {"srm": {"action": "pause"}}, winner, srm_mismatch=True, srm_p_value=1e-9))
    assert (paused.action, paused.rule, paused.srm_p_value) == ("pause", "srm", 1e-9)


def test_shadow_mode_is_carried_by_the_decision() -> None:
    decision = decide(
        inputs(STOP | {"mode": "shadow"}, {WIN: [binary("control", 4000, 0.1), binary("test", 4000, 0.14)]})
    )
    assert decision.mode == "shadow" and decision.action == "ship_variant"


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([], "scheduling_config.autopilot must be an object, got list."),
        (
            {},
            "scheduling_config.autopilot needs at least one rule: stop_when_significant, guardrails or srm.",
        ),
        (
            {"mode": "yolo", "srm": {}},
            'scheduling_config.autopilot.mode must be "act" or "shadow", got \'yolo\'.',
        ),
        (
            {"srm": {}, "check_every_hours": 0},
            "scheduling_config.autopilot.check_every_hours must be a number from 0.001 to 8760.",
        ),
        (
            {"guardrails": [{"metric": "nope"}]},
            "scheduling_config.autopilot.guardrails[0].metric names metric 'nope', which this experiment does not have.",
        ),
        (
            {"guardrails": [{"metric": WIN, "max_regression": -0.1}]},
            "scheduling_config.autopilot.guardrails[0].max_regression must be a number from 0 to 1.",
        ),
        (
            {"srm": {"action": "explode"}},
            'scheduling_config.autopilot.srm.action must be "pause" or "notify", got \'explode\'.',
        ),
        (
            {"srm": {}, "notify": {"webhook_url": "ftp://x"}},
            "scheduling_config.autopilot.notify.webhook_url must be an http(s) URL.",
        ),
    ],
)
def test_rules_are_checked_with_clear_messages(rules: Any, message: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate_autopilot({"autopilot": rules}, metrics=[WIN], primary=[WIN])
    assert (refused.value.detail, refused.value.attr) == (message, "scheduling_config")


def test_defaults_removal_and_copies() -> None:
    rules = parse_rules({"stop_when_significant": {}}, [WIN])
    assert rules == AutopilotRules(stop=rules.stop) and rules.stop is not None
    assert (rules.stop.metric, rules.stop.min_days, rules.stop.action) == (None, 7.0, "ship_winner")
    with pytest.raises(ValidationFailed, match="no primary metric"):
        validate_autopilot({"autopilot": {"stop_when_significant": {}}}, metrics=[], primary=[])
    config = {"autopilot": {"guardrails": [{"metric": GUARD}], "stop_when_significant": {"metric": WIN}}}
    with pytest.raises(ValidationFailed, match=f"removes metric '{GUARD}'"):
        check_metrics_kept(config, [WIN])
    copied = remap_autopilot(config, {WIN: "new-win"})
    assert copied is not None
    assert copied["autopilot"] == {"guardrails": [], "stop_when_significant": {"metric": "new-win"}}


def test_the_next_evaluation_follows_the_last_one() -> None:
    start = NOW - timedelta(days=2)
    config: dict[str, Any] = {"autopilot": {"srm": {}, "check_every_hours": 6}}
    assert next_evaluation(config, start_date=start, end_date=None, running=True) == start + timedelta(
        hours=6
    )
    later = with_verdict(config, {"at": NOW.isoformat(), "summary": "x"})
    assert next_evaluation(later, start_date=start, end_date=None, running=True) == NOW + timedelta(hours=6)
    assert next_evaluation(later, start_date=start, end_date=None, running=False) is None
    assert next_evaluation({"srm": 1}, start_date=start, end_date=None, running=True) is None
