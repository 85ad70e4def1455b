"""Experimentation velocity (`GET /experiments/stats/`, reference §4.12): windows and the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WINDOW_DAYS = 30


@dataclass(frozen=True)
class VelocityWindows:
    """UTC bounds, half-open: `[start, end)`."""

    last_start: datetime
    last_end: datetime
    previous_start: datetime
    previous_end: datetime


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def velocity_windows(now: datetime, timezone: str | None) -> VelocityWindows:
    """The last 30 days up to the end of today, and the 30 before, in the project's time zone.

    `today` is the project's local date; day boundaries are its local midnights.
    """
    zone = _zone(timezone)
    today = now.astimezone(zone).date()
    last_start = today - timedelta(days=WINDOW_DAYS)
    return VelocityWindows(
        last_start=_midnight(last_start, zone),
        last_end=_midnight(today + timedelta(days=1), zone),
        previous_start=_midnight(today - timedelta(days=2 * WINDOW_DAYS), zone),
        previous_end=_midnight(last_start, zone),
    )


def percent_change(last: int, previous: int) -> float:
    """100.0 from nothing to something, 0.0 from nothing to nothing, else rounded to one decimal."""
    if previous == 0:
        return 100.0 if last > 0 else 0.0
    return round((last - previous) / previous * 100, 1)
