"""Metric fingerprint, byte-for-byte PostHog's `compute_metric_fingerprint` (reference §1.10).

The fingerprint keys stored timeseries rows: any drift from upstream here would make results computed
by one implementation invisible to the other, so the hashing recipe is reproduced exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from copy import deepcopy
from datetime import UTC, datetime
from typing import Any

from domain.stats import fingerprint_options

# Presentation-only keys: renaming a metric or regenerating its uuid must not invalidate results.
METRIC_FIELDS_TO_IGNORE: frozenset[str] = frozenset(
    {"uuid", "name", "kind", "fingerprint", "only_count_matured_users"}
)


def _strip_empty_breakdowns(clean_metric: dict[str, Any]) -> None:
    """An empty breakdown list is the same config as none; both shapes must hash alike."""
    breakdown_filter = clean_metric.get("breakdownFilter")
    if breakdown_filter is None:
        clean_metric.pop("breakdownFilter", None)
        return
    if isinstance(breakdown_filter, dict) and not breakdown_filter.get("breakdowns"):
        remaining = {key: value for key, value in breakdown_filter.items() if key != "breakdowns"}
        if remaining:
            clean_metric["breakdownFilter"] = remaining
        else:
            clean_metric.pop("breakdownFilter")


def _start_date_str(start_date: Any) -> Any:
    """UTC isoformat so the hash does not depend on the caller's time zone.

    Naive datetimes are read as UTC (PostHog's API does the same on input); upstream would read them
    as server-local time, which is UTC on PostHog's servers.
    """
    if isinstance(start_date, datetime):
        aware = start_date if start_date.tzinfo is not None else start_date.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    return start_date


def compute_metric_fingerprint(
    metric: Mapping[str, Any],
    start_date: Any,
    stats_method: str | None = None,
    exposure_criteria: Mapping[str, Any] | None = None,
    only_count_matured_users: bool = False,
    excluded_variants: Iterable[str] | None = None,
    *,
    stats_config: Mapping[str, Any] | None = None,
) -> str:
    """SHA-256 hex digest of the metric definition plus the experiment inputs that change results.

    `stats_config` adds Flagship's own result-changing settings (sequential testing, CUPED, a
    multiple-comparison correction) under `stats_options`, only when one differs from its default:
    PostHog's recipe and vectors stay exactly as they are for default settings, and turning one of
    them on or off gives the series a new fingerprint instead of serving rows computed without it.
    """
    clean_metric = deepcopy(dict(metric))
    for field in METRIC_FIELDS_TO_IGNORE:
        clean_metric.pop(field, None)
    _strip_empty_breakdowns(clean_metric)

    data: dict[str, Any] = {
        "metric": clean_metric,
        "start_date": _start_date_str(start_date),
        "stats_method": "bayesian" if stats_method is None else stats_method,
    }
    if exposure_criteria:
        data["exposure_criteria"] = exposure_criteria
    if only_count_matured_users:
        data["only_count_matured_users"] = True
    excluded = list(excluded_variants or [])
    if excluded:
        data["excluded_variants"] = sorted(set(excluded))
    options = fingerprint_options(stats_config)
    if options:
        data["stats_options"] = options

    json_str = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(json_str.encode("utf-8")).hexdigest()


def with_fingerprints(
    metrics: list[Any] | None,
    *,
    start_date: datetime | None,
    stats_config: dict[str, Any] | None,
    exposure_criteria: dict[str, Any] | None,
    only_count_matured_users: bool,
    parameters: dict[str, Any] | None,
) -> list[Any]:
    """The experiment's metrics (dicts only), each with its fingerprint for these settings."""
    method = (stats_config or {}).get("method") or "bayesian"
    excluded = (parameters or {}).get("excluded_variants") or []
    return [
        {
            **metric,
            "fingerprint": compute_metric_fingerprint(
                metric,
                start_date,
                method,
                exposure_criteria,
                only_count_matured_users,
                excluded,
                stats_config=stats_config,
            ),
        }
        for metric in metrics or []
        if isinstance(metric, dict)
    ]
