"""When the autopilot evaluates, and what it leaves in `scheduling_config.status.autopilot`.

The next evaluation is `check_every_hours` after the last one (or after the launch), while the
experiment runs: no state besides the row, so the workflow's timer and the representation's
`scheduled_actions` compute the same instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from domain.autopilot.rules import KEY, rules_of

ACTION = "evaluate_rules"


def last_evaluated_at(scheduling_config: Mapping[str, Any] | None) -> datetime | None:
    status = ((scheduling_config or {}).get("status") or {}).get(KEY) or {}
    at = status.get("at") if isinstance(status, Mapping) else None
    if not isinstance(at, str):
        return None
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None


def next_evaluation(
    scheduling_config: Mapping[str, Any] | None,
    *,
    start_date: datetime | None,
    end_date: datetime | None,
    running: bool,
) -> datetime | None:
    """The instant of the next evaluation, or None (no rules, not running)."""
    if not running or start_date is None or end_date is not None:
        return None
    rules = rules_of(scheduling_config)
    if rules is None:
        return None
    last = last_evaluated_at(scheduling_config)
    base = last if last is not None and last >= start_date else start_date
    return base + timedelta(hours=rules.check_every_hours)


def with_verdict(scheduling_config: Mapping[str, Any] | None, verdict: Mapping[str, Any]) -> dict[str, Any]:
    """`scheduling_config` with the last verdict (its `at` drives the next evaluation)."""
    out = dict(scheduling_config or {})
    status = dict(out.get("status") or {})
    status[KEY] = dict(verdict)
    out["status"] = status
    return out


def scheduled_evaluation(
    scheduling_config: Mapping[str, Any] | None,
    *,
    start_date: datetime | None,
    end_date: datetime | None,
    running: bool,
) -> dict[str, Any] | None:
    """The representation's `scheduled_actions` entry for the next evaluation."""
    at = next_evaluation(scheduling_config, start_date=start_date, end_date=end_date, running=running)
    if at is None:
        return None
    return {"action": ACTION, "at": at.isoformat().replace("+00:00", "Z")}
