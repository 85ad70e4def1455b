"""`scheduling_config`: Flagship's meaning for PostHog's opaque object (durable launch and end).

Keys (all optional; unknown keys are stored and echoed verbatim):
- `launch_at`: ISO 8601 with a timezone; a draft is launched then, as POST …/launch/ would.
- `end_at`: ISO 8601 with a timezone; a running or paused experiment is ended then.
- `duration_days`: end that many days (fractions allowed) after `start_date`; excludes `end_at`.
- `ship_variant_key`: at the scheduled end, ship this variant instead of only ending.
- `end_conclusion`, `end_conclusion_comment`: the conclusion the scheduled end records.
- `status` (read-only): what the timer did, per action: `{state, at, detail}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from domain.errors import ValidationFailed

ATTR = "scheduling_config"
CONCLUSIONS = ("won", "lost", "inconclusive", "stopped_early", "invalid")
Action = Literal["launch", "end"]


@dataclass(frozen=True)
class ScheduledAction:
    action: Action
    at: datetime
    operation: Literal["launch", "end", "ship_variant"]
    variant_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.operation, "at": _iso(self.at)}
        if self.variant_key:
            out["variant_key"] = self.variant_key
        return out


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _fail(detail: str) -> ValidationFailed:
    return ValidationFailed(detail, attr=ATTR)


def parse_aware(key: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise _fail(f"scheduling_config.{key} must be an ISO 8601 datetime string.")
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise _fail(f"scheduling_config.{key} is not a valid ISO 8601 datetime: {value!r}.") from None
    if parsed.tzinfo is None:
        raise _fail(
            f"scheduling_config.{key} must include a timezone (e.g. 2026-12-01T10:00:00Z or +02:00); "
            f"got the naive datetime {value!r}."
        )
    return parsed


def _check_duration(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _fail("scheduling_config.duration_days must be a positive number of days.")


def _check_text(key: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise _fail(f"scheduling_config.{key} must be a string.")


def validate_scheduling_config(
    config: Any, *, variant_keys: Sequence[str], archived: bool, deleted: bool
) -> dict[str, Any] | None:
    """Check a sent `scheduling_config`; returns it without the read-only `status`."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise _fail(f"scheduling_config must be an object, got {type(config).__name__}.")
    clean = {k: v for k, v in config.items() if k != "status"}
    launch = parse_aware("launch_at", clean["launch_at"]) if clean.get("launch_at") is not None else None
    end = parse_aware("end_at", clean["end_at"]) if clean.get("end_at") is not None else None
    if clean.get("duration_days") is not None:
        _check_duration(clean["duration_days"])
        if end is not None:
            raise _fail("scheduling_config.end_at and scheduling_config.duration_days cannot both be set.")
    if launch and end and end <= launch:
        raise _fail("scheduling_config.end_at must be after scheduling_config.launch_at.")
    _check_ship(clean, variant_keys, has_end=end is not None or clean.get("duration_days") is not None)
    if clean.get("end_conclusion") is not None and clean["end_conclusion"] not in CONCLUSIONS:
        raise _fail(f'scheduling_config.end_conclusion "{clean["end_conclusion"]}" is not a valid choice.')
    _check_text("end_conclusion_comment", clean.get("end_conclusion_comment"))
    if (archived or deleted) and has_schedule(clean):
        state = "archived" if archived else "deleted"
        raise _fail(f"Cannot schedule a launch or end on an {state} experiment.")
    return clean


def _check_ship(config: Mapping[str, Any], variant_keys: Sequence[str], *, has_end: bool) -> None:
    key = config.get("ship_variant_key")
    if key is None:
        return
    _check_text("ship_variant_key", key)
    if not has_end:
        raise _fail("scheduling_config.ship_variant_key needs end_at or duration_days.")
    if variant_keys and key not in variant_keys:
        raise _fail(f"Variant '{key}' not found on feature flag.")


def has_schedule(config: Mapping[str, Any] | None) -> bool:
    config = config or {}
    return any(config.get(k) is not None for k in ("launch_at", "end_at", "duration_days"))


def _done(config: Mapping[str, Any], action: Action) -> bool:
    return action in (config.get("status") or {})


def scheduled_end_at(config: Mapping[str, Any] | None, start_date: datetime | None) -> datetime | None:
    config = config or {}
    if config.get("end_at") is not None:
        return parse_aware("end_at", config["end_at"])
    days = config.get("duration_days")
    if days is not None and start_date is not None:
        return start_date + timedelta(days=float(days))
    return None


def next_action(
    config: Mapping[str, Any] | None, *, start_date: datetime | None, end_date: datetime | None
) -> ScheduledAction | None:
    """The next thing the timer will do, or None (each action fires at most once)."""
    config = config or {}
    if start_date is None:
        if config.get("launch_at") is not None and not _done(config, "launch"):
            return ScheduledAction("launch", parse_aware("launch_at", config["launch_at"]), "launch")
        return None
    if end_date is not None or _done(config, "end"):
        return None
    end = scheduled_end_at(config, start_date)
    if end is None:
        return None
    ship = config.get("ship_variant_key")
    return ScheduledAction("end", end, "ship_variant" if ship else "end", ship)


def scheduled_actions(
    config: Mapping[str, Any] | None, *, start_date: datetime | None, end_date: datetime | None
) -> list[dict[str, Any]]:
    """The representation's read-only `scheduled_actions`: what is still to happen, in order."""
    upcoming = []
    first = next_action(config, start_date=start_date, end_date=end_date)
    if first is not None:
        upcoming.append(first.as_dict())
        if first.action == "launch":
            end = scheduled_end_at(config, first.at)
            ship = (config or {}).get("ship_variant_key")
            if end is not None and not _done(config or {}, "end"):
                upcoming.append(
                    ScheduledAction("end", end, "ship_variant" if ship else "end", ship).as_dict()
                )
    return upcoming


def with_status(
    config: Mapping[str, Any] | None, action: Action, state: str, at: datetime, detail: str | None = None
) -> dict[str, Any]:
    """Record what the timer (or a cancelling manual action) did with one scheduled action."""
    out = dict(config or {})
    status = dict(out.get("status") or {})
    status[action] = {"state": state, "at": _iso(at), "detail": detail}
    out["status"] = status
    return out


def cancel_pending(
    config: Mapping[str, Any] | None,
    *,
    start_date: datetime | None,
    end_date: datetime | None,
    at: datetime,
    why: str,
) -> dict[str, Any] | None:
    """A manual end or reset cancels what the timer still had to do."""
    if not has_schedule(config):
        return dict(config) if config is not None else None
    out: dict[str, Any] = dict(config or {})
    for action in ("launch", "end"):
        if not _done(out, action) and _is_set(out, action):  # type: ignore[arg-type]
            out = with_status(out, action, "cancelled", at, why)  # type: ignore[arg-type]
    return out


def _is_set(config: Mapping[str, Any], action: Action) -> bool:
    if action == "launch":
        return config.get("launch_at") is not None
    return config.get("end_at") is not None or config.get("duration_days") is not None
