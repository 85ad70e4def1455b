"""Metric fingerprint: PostHog's recipe, checked against hand-built canonical JSON."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

from domain.fingerprint import compute_metric_fingerprint

METRIC = {
    "kind": "ExperimentMetric",
    "uuid": "u-1",
    "name": "Revenue",
    "fingerprint": "stale",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase"},
}
START = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_known_answer_minimal() -> None:
    expected = _sha(
        '{"metric":{"metric_type":"mean","source":{"event":"purchase","kind":"EventsNode"}},'
        '"start_date":"2024-01-01T10:00:00+00:00","stats_method":"bayesian"}'
    )
    assert compute_metric_fingerprint(METRIC, START) == expected
    assert compute_metric_fingerprint(METRIC, START, None) == expected


def test_known_answer_with_every_optional_input() -> None:
    expected = _sha(
        '{"excluded_variants":["a","b"],"exposure_criteria":{"filterTestAccounts":true},'
        '"metric":{"metric_type":"mean","source":{"event":"purchase","kind":"EventsNode"}},'
        '"only_count_matured_users":true,"start_date":null,"stats_method":"frequentist"}'
    )
    got = compute_metric_fingerprint(
        METRIC,
        None,
        "frequentist",
        {"filterTestAccounts": True},
        only_count_matured_users=True,
        excluded_variants=["b", "a", "b"],
    )
    assert got == expected


def test_falsy_optional_inputs_are_left_out() -> None:
    base = compute_metric_fingerprint(METRIC, START)
    assert compute_metric_fingerprint(METRIC, START, "bayesian", {}, False, []) == base
    assert compute_metric_fingerprint(METRIC, START, "bayesian", None, False, None) == base


def test_presentation_fields_do_not_matter() -> None:
    renamed = {
        **METRIC,
        "uuid": "other",
        "name": "Other",
        "fingerprint": None,
        "only_count_matured_users": True,
    }
    assert compute_metric_fingerprint(renamed, START) == compute_metric_fingerprint(METRIC, START)
    assert "fingerprint" in METRIC and METRIC["uuid"] == "u-1"  # input untouched


def test_empty_breakdowns_hash_like_no_breakdown_filter() -> None:
    base = compute_metric_fingerprint(METRIC, START)
    assert compute_metric_fingerprint({**METRIC, "breakdownFilter": None}, START) == base
    assert compute_metric_fingerprint({**METRIC, "breakdownFilter": {"breakdowns": []}}, START) == base
    assert compute_metric_fingerprint({**METRIC, "breakdownFilter": {}}, START) == base
    kept = compute_metric_fingerprint(
        {**METRIC, "breakdownFilter": {"breakdowns": [], "breakdown_limit": 5}}, START
    )
    assert kept == compute_metric_fingerprint({**METRIC, "breakdownFilter": {"breakdown_limit": 5}}, START)
    assert kept != base


def test_start_date_is_normalised_to_utc() -> None:
    plus_two = START.astimezone(timezone(timedelta(hours=2)))
    naive = START.replace(tzinfo=None)  # naive input is read as UTC
    base = compute_metric_fingerprint(METRIC, START)
    assert compute_metric_fingerprint(METRIC, plus_two) == base
    assert compute_metric_fingerprint(METRIC, naive) == base
    assert compute_metric_fingerprint(METRIC, START + timedelta(seconds=1)) != base


def test_every_input_changes_the_fingerprint() -> None:
    base = compute_metric_fingerprint(METRIC, START)
    variants = {
        compute_metric_fingerprint({**METRIC, "goal": "decrease"}, START),
        compute_metric_fingerprint(METRIC, START, "frequentist"),
        compute_metric_fingerprint(METRIC, START, exposure_criteria={"filterTestAccounts": False}),
        compute_metric_fingerprint(METRIC, START, only_count_matured_users=True),
        compute_metric_fingerprint(METRIC, START, excluded_variants=["test"]),
    }
    assert base not in variants and len(variants) == 5
