"""`ExperimentExposureQuery`: cumulative exposures per variant and day (upstream
`ExperimentExposuresQueryRunner`).

Each entity is counted once, on the local day of its first exposure, under its variant — or under
`$multiple` when it was seen in several variants (exclude handling). Series are cumulative, cover
every day from the start to the end (or today), and only variants with exposures appear: flag
variants in flag order, then `$multiple`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np

from domain.metric_engine.columns import EventColumns, IntArray, from_micros
from domain.metric_engine.days import DayGrid, day_range, local_date, zone
from domain.metric_engine.exposures import build_exposures
from domain.metric_engine.spec import MULTIPLE_VARIANT_KEY, ExperimentSpec


def _labels(spec: ExperimentSpec) -> list[str]:
    return [*spec.variants, MULTIPLE_VARIANT_KEY]


def exposure_days(spec: ExperimentSpec, as_of: int) -> list[date]:
    """The days of the series: from the start to the end (or `as_of`), in the project zone."""
    tz = zone(spec.timezone)
    end = from_micros(spec.end) if spec.end is not None else from_micros(as_of)
    return day_range(local_date(from_micros(spec.start), tz), local_date(end, tz))


def exposure_counts(events: EventColumns, spec: ExperimentSpec, as_of: int) -> dict[str, Any]:
    """The query's response body, as of `as_of` (µs)."""
    exposures = build_exposures(events, spec)
    exposed = np.flatnonzero(exposures.first < as_of)
    label = exposures.variant[exposed].copy()
    label[exposures.multiple[exposed] < as_of] = len(spec.variants)  # the `$multiple` slot
    days = exposure_days(spec, as_of)
    times = exposures.first[exposed]
    grid = DayGrid.covering(spec.start, int(times.max(initial=spec.start)), spec.timezone)
    offset = grid.first.toordinal() - days[0].toordinal()
    day_of = (grid.index(times) + offset).clip(0, len(days) - 1)
    counts = np.zeros((len(_labels(spec)), len(days)), dtype=np.int64)
    np.add.at(counts, (label, day_of), 1)
    return exposure_response(spec, counts, as_of)


def exposure_response(spec: ExperimentSpec, counts: IntArray, as_of: int) -> dict[str, Any]:
    """The body from first exposures counted per label (variants, then `$multiple`) and day."""
    tz = zone(spec.timezone)
    start = from_micros(spec.start)
    end = from_micros(spec.end) if spec.end is not None else None
    cumulative = counts.cumsum(axis=1)
    keys = [d.isoformat() for d in exposure_days(spec, as_of)]
    series = [
        {"variant": name, "days": keys, "exposure_counts": [int(c) for c in cumulative[i]]}
        for i, name in enumerate(_labels(spec))
        if counts[i].any()
    ]
    return {
        "kind": "ExperimentExposureQuery",
        "timeseries": series,
        "total_exposures": {s["variant"]: s["exposure_counts"][-1] for s in series},
        "date_range": {
            "date_from": start.astimezone(tz).isoformat(),
            "date_to": _iso(end, tz),
            "explicitDate": True,
        },
    }


def _iso(moment: datetime | None, tz: Any) -> str | None:
    return moment.astimezone(tz).isoformat() if moment is not None else None
