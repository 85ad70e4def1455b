"""Calendar days in the project's time zone, and their boundaries as UTC instants.

One rule everywhere (the backfill, the daily refresh, the read endpoint, the exposure chart): a day
is a calendar date in the project time zone, and the result for day D is the cumulative analysis as
of the next local midnight (`query_to`). A stored result belongs to the day of `query_to - 1 µs`.
Upstream builds the read endpoint's keys from the UTC date of `start_date` instead (reference §4.13
caveat); Flagship uses the project-zone date for both, so the keys always meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from domain.metric_engine.columns import IntArray, to_micros

ONE_MICROSECOND = timedelta(microseconds=1)


def zone(name: str | None) -> ZoneInfo:
    """The project's zone; an unknown name reads as UTC rather than failing every analysis."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """00:00 of `day` in `tz`, as a UTC instant (a DST gap at midnight resolves forward)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def result_day(query_to: datetime, tz: ZoneInfo) -> date:
    """The day a stored result belongs to."""
    return local_date(query_to - ONE_MICROSECOND, tz)


@dataclass(frozen=True)
class AnalysisDay:
    day: date
    query_to: datetime  # the next local midnight, UTC

    @property
    def as_of(self) -> int:
        return to_micros(self.query_to)


def day_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def analysis_days(start: datetime, end: datetime | None, now: datetime, timezone: str) -> list[AnalysisDay]:
    """Every day from the start to the end (or today), inclusive, in the project zone."""
    tz = zone(timezone)
    first = local_date(start, tz)
    last = max(first, local_date(end if end is not None else now, tz))
    return [AnalysisDay(day, local_midnight(day + timedelta(days=1), tz)) for day in day_range(first, last)]


def last_midnight(now: datetime, timezone: str) -> datetime:
    """The most recent local midnight at or before `now`: the end of the last complete day."""
    tz = zone(timezone)
    return local_midnight(local_date(now, tz), tz)


@dataclass(frozen=True)
class DayGrid:
    """Local midnights over a span, for turning µs timestamps into local day numbers vectorially."""

    first: date
    midnights: IntArray  # µs of local midnight of first, first+1, …

    @classmethod
    def covering(cls, low: int, high: int, timezone: str, extra_days: int = 0) -> DayGrid:
        tz = zone(timezone)
        first = datetime.fromtimestamp(low / 1e6, tz=UTC).astimezone(tz).date() - timedelta(days=1)
        last = datetime.fromtimestamp(high / 1e6, tz=UTC).astimezone(tz).date() + timedelta(
            days=1 + extra_days
        )
        days = day_range(first, last)
        return cls(first, np.asarray([to_micros(local_midnight(d, tz)) for d in days], dtype=np.int64))

    def index(self, times: IntArray) -> IntArray:
        """Local day number (0 = `first`) of each time."""
        return np.searchsorted(self.midnights, times, side="right").astype(np.int64) - 1

    def midnight(self, index: IntArray) -> IntArray:
        """µs of local midnight of day number `index` (clipped into the grid)."""
        return self.midnights[np.clip(index, 0, self.midnights.size - 1)]
