"""`scheduling_config.autopilot`: the decision rules an experiment runs by itself.

```json
{"mode": "act" | "shadow",
 "check_every_hours": 24,
 "stop_when_significant": {"metric": "<uuid>", "min_days": 7, "action": "ship_winner" | "end"},
 "guardrails": [{"metric": "<uuid>", "max_regression": 0.02, "action": "pause" | "ship_control"}],
 "srm": {"action": "pause" | "notify"},
 "notify": {"webhook_url": "https://…"}}
```

Every key is optional but at least one rule (`stop_when_significant`, `guardrails`, `srm`) is
needed. `stop_when_significant.metric` defaults to the first primary metric when the rules are
read; a metric a rule names must be one of the experiment's (inline or saved).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from domain.errors import ValidationFailed

ATTR = "scheduling_config"
KEY = "autopilot"
MIN_CHECK_HOURS = 0.001  # tests and demos run in seconds
MAX_CHECK_HOURS = 24 * 365
DEFAULT_CHECK_HOURS = 24.0
DEFAULT_MIN_DAYS = 7.0

Mode = Literal["act", "shadow"]
StopAction = Literal["ship_winner", "end"]
GuardrailAction = Literal["pause", "ship_control"]
SrmAction = Literal["pause", "notify"]


@dataclass(frozen=True)
class StopRule:
    metric: str | None  # None: the experiment's first primary metric
    min_days: float
    action: StopAction


@dataclass(frozen=True)
class Guardrail:
    metric: str
    max_regression: float  # a fraction of control's mean
    action: GuardrailAction


@dataclass(frozen=True)
class AutopilotRules:
    mode: Mode = "act"
    check_every_hours: float = DEFAULT_CHECK_HOURS
    stop: StopRule | None = None
    guardrails: tuple[Guardrail, ...] = field(default_factory=tuple)
    srm: SrmAction | None = None
    webhook_url: str | None = None

    @property
    def metrics(self) -> list[str]:
        """The metric uuids the rules read (guardrails first: they are checked first)."""
        named = [g.metric for g in self.guardrails]
        if self.stop is not None and self.stop.metric is not None:
            named.append(self.stop.metric)
        return list(dict.fromkeys(named))


def _fail(where: str, detail: str) -> ValidationFailed:
    return ValidationFailed(f"scheduling_config.autopilot{where} {detail}", attr=ATTR)


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"must be an object, got {type(value).__name__}.")
    return value


def _number(value: Any, where: str, low: float, high: float, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _fail(where, f"must be a number from {low:g} to {high:g}.")
    return float(value)


def _choice(value: Any, where: str, choices: Sequence[str], default: str | None) -> str | None:
    if value is None:
        return default
    if value not in choices:
        listed = " or ".join(f'"{c}"' for c in choices)
        raise _fail(where, f"must be {listed}, got {value!r}.")
    return str(value)


def _metric(value: Any, where: str, metrics: Sequence[str] | None) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(where, "must be the uuid of one of the experiment's metrics.")
    if metrics is not None and value not in metrics:
        raise _fail(where, f"names metric '{value}', which this experiment does not have.")
    return value


def _stop(raw: Any, metrics: Sequence[str] | None) -> StopRule:
    rule = _object(raw, ".stop_when_significant")
    metric = rule.get("metric")
    return StopRule(
        metric=None if metric is None else _metric(metric, ".stop_when_significant.metric", metrics),
        min_days=_number(rule.get("min_days"), ".stop_when_significant.min_days", 0, 3650, DEFAULT_MIN_DAYS),
        action=_choice(
            rule.get("action"), ".stop_when_significant.action", ("ship_winner", "end"), "ship_winner"
        ),  # type: ignore[arg-type]
    )


def _guardrails(raw: Any, metrics: Sequence[str] | None) -> tuple[Guardrail, ...]:
    if not isinstance(raw, list):
        raise _fail(".guardrails", "must be a list of rules.")
    out = []
    for i, item in enumerate(raw):
        rule = _object(item, f".guardrails[{i}]")
        out.append(
            Guardrail(
                metric=_metric(rule.get("metric"), f".guardrails[{i}].metric", metrics),
                max_regression=_number(
                    rule.get("max_regression"), f".guardrails[{i}].max_regression", 0, 1, 0.0
                ),
                action=_choice(
                    rule.get("action"), f".guardrails[{i}].action", ("pause", "ship_control"), "pause"
                ),  # type: ignore[arg-type]
            )
        )
    return tuple(out)


def _webhook(raw: Any) -> str | None:
    if raw is None:
        return None
    url = _object(raw, ".notify").get("webhook_url")
    if not isinstance(url, str) or len(url) > 2048:
        raise _fail(".notify.webhook_url", "must be an http(s) URL.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail(".notify.webhook_url", "must be an http(s) URL.")
    return url


def parse_rules(raw: Any, metrics: Sequence[str] | None = None) -> AutopilotRules:
    """Read (and with `metrics`, check against the experiment's metric uuids) the rules."""
    config = _object(raw, "")
    rules = AutopilotRules(
        mode=_choice(config.get("mode"), ".mode", ("act", "shadow"), "act"),  # type: ignore[arg-type]
        check_every_hours=_number(
            config.get("check_every_hours"),
            ".check_every_hours",
            MIN_CHECK_HOURS,
            MAX_CHECK_HOURS,
            DEFAULT_CHECK_HOURS,
        ),
        stop=_stop(config["stop_when_significant"], metrics)
        if config.get("stop_when_significant") is not None
        else None,
        guardrails=_guardrails(config["guardrails"], metrics) if config.get("guardrails") is not None else (),
        srm=_choice(_object(config["srm"], ".srm").get("action"), ".srm.action", ("pause", "notify"), "pause")  # type: ignore[arg-type]
        if config.get("srm") is not None
        else None,
        webhook_url=_webhook(config.get("notify")),
    )
    if rules.stop is None and not rules.guardrails and rules.srm is None:
        raise _fail("", "needs at least one rule: stop_when_significant, guardrails or srm.")
    return rules


def rules_of(scheduling_config: Mapping[str, Any] | None) -> AutopilotRules | None:
    """The stored rules (checked when they were saved); None when there are none."""
    raw = (scheduling_config or {}).get(KEY)
    return parse_rules(raw) if raw is not None else None


def validate_autopilot(
    scheduling_config: Mapping[str, Any] | None, metrics: Sequence[str], primary: Sequence[str]
) -> None:
    """Check the rules of a sent `scheduling_config` against the metrics the experiment will have.

    `metrics`: every metric uuid (primary and secondary, inline and saved); `primary`: the primary
    ones in order (the default metric of `stop_when_significant`)."""
    raw = (scheduling_config or {}).get(KEY)
    if raw is None:
        return
    rules = parse_rules(raw, metrics)
    if rules.stop is not None and rules.stop.metric is None and not primary:
        raise _fail(".stop_when_significant.metric", "is needed: the experiment has no primary metric.")


def check_metrics_kept(scheduling_config: Mapping[str, Any] | None, metrics: Sequence[str]) -> None:
    """A change of metrics must not remove one a stored rule names."""
    raw = (scheduling_config or {}).get(KEY)
    if raw is None:
        return
    for name in parse_rules(raw).metrics:
        if name not in metrics:
            raise ValidationFailed(
                f"This change removes metric '{name}', which scheduling_config.autopilot uses. "
                "Change or remove the rule first.",
                attr=ATTR,
            )


def remap_autopilot(
    scheduling_config: Mapping[str, Any] | None, mapping: Mapping[str, str]
) -> dict[str, Any] | None:
    """The rules of a copy whose metrics got new uuids (`mapping`: old → new). A rule on a metric
    the copy does not carry is dropped (a stop rule falls back to the first primary metric)."""
    if scheduling_config is None:
        return None
    out = dict(scheduling_config)
    raw = out.get(KEY)
    if not isinstance(raw, Mapping):
        return out
    rules = dict(raw)
    stop = rules.get("stop_when_significant")
    if isinstance(stop, Mapping) and stop.get("metric") is not None:
        rules["stop_when_significant"] = {**stop, "metric": mapping.get(str(stop["metric"]))}
    if isinstance(rules.get("guardrails"), list):
        rules["guardrails"] = [
            {**g, "metric": mapping[g["metric"]]}
            for g in rules["guardrails"]
            if isinstance(g, Mapping) and g.get("metric") in mapping
        ]
    out[KEY] = rules
    status = out.get("status")
    if isinstance(status, Mapping) and KEY in status:
        out["status"] = {k: v for k, v in status.items() if k != KEY}  # the copy has no verdict yet
    return out
