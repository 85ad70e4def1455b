"""Pure rules behind duplicate, prompt experiments, velocity stats, eligibility and exposure cohorts."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from domain.errors import ValidationFailed
from domain.experiment_copy import copy_name, copy_parameters, regenerate_metric_uuids, saved_metric_refs
from domain.experiment_stats import percent_change, velocity_windows
from domain.exposure_cohort import EXPOSURE_EVENT, ExposureCriterion, event_matcher, exposure_target
from domain.flag_eligibility import InvalidPaging, is_eligible_flag, paging
from domain.flag_implementation import requires_flag_warning
from domain.holdout_rules import with_holdout_variant
from domain.prompt_experiments import default_flag_key, prompt_variants, slugify


def test_copy_name_counts_up_from_copy() -> None:
    assert copy_name("Exp", set()) == "Exp (Copy)"
    assert copy_name("Exp", {"Exp (Copy)"}) == "Exp (Copy) 1"
    assert copy_name("Exp", {"Exp (Copy)", "Exp (Copy) 1", "Exp (Copy) 2"}) == "Exp (Copy) 3"
    assert copy_name("Exp", {"Exp (Copy) 1"}) == "Exp (Copy)"


def test_regenerated_uuids_remap_orderings() -> None:
    counter = itertools.count()
    out = regenerate_metric_uuids(
        [{"uuid": "a", "fingerprint": "f"}, {"uuid": "b"}],
        [{"uuid": "c"}],
        ["b", "saved", "a"],
        None,
        lambda: f"n{next(counter)}",
    )
    assert out["metrics"] == [{"uuid": "n0"}, {"uuid": "n1"}]
    assert out["metrics_secondary"] == [{"uuid": "n2"}]
    assert out["primary_metrics_ordered_uuids"] == ["n1", "saved", "n0"]
    assert out["secondary_metrics_ordered_uuids"] is None


def test_copy_parameters_take_an_existing_flags_variants() -> None:
    variants = [{"key": "control", "rollout_percentage": 50}, {"key": "x", "rollout_percentage": 50}]
    params = {"feature_flag_variants": [{"key": "control"}], "rollout_percentage": 30}
    assert copy_parameters(params, {"multivariate": {"variants": variants}}) == {
        "feature_flag_variants": variants,
        "rollout_percentage": 30,
    }
    assert copy_parameters(params, {"multivariate": None}) == params
    assert copy_parameters(None, None) == {}
    assert saved_metric_refs([(1, {}), (2, {"type": "secondary"})]) == [
        {"id": 1},
        {"id": 2, "metadata": {"type": "secondary"}},
    ]


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        ([4, 7], [("control", "v4", 50), ("test", "v7", 50)]),
        ([1, 2, 3], [("control", "v1", 33), ("test-1", "v2", 33), ("test-2", "v3", 34)]),
        (list(range(1, 8)), [("control", "v1", 14)] + [(f"test-{i}", f"v{i + 1}", 14) for i in range(1, 6)] + [("test-6", "v7", 16)]),
    ],
)  # fmt: skip
def test_prompt_variants(versions: list[int], expected: list[tuple[str, str, int]]) -> None:
    variants = prompt_variants(versions)
    assert [(v["key"], v["name"], v["rollout_percentage"]) for v in variants] == expected
    assert sum(v["rollout_percentage"] for v in variants) == 100


def test_slug_and_default_key() -> None:
    assert slugify("Support Bot: v1, v2 (cost, latency)") == "support-bot-v1-v2-cost-latency"
    assert slugify("Ünïcode — test__") == "unicode-test"
    assert default_flag_key("!!!", set().__contains__) == "experiment"
    taken = {"a-b", "a-b-2"}
    assert default_flag_key("A b", taken.__contains__) == "a-b-3"
    assert len(default_flag_key("x" * 300, set().__contains__)) == 200


def test_velocity_windows_follow_the_project_day() -> None:
    now = datetime(2024, 3, 31, 11, 30, tzinfo=UTC)  # already April 1st in Auckland (UTC+13)
    auckland = velocity_windows(now, "Pacific/Auckland")
    assert auckland.last_end == datetime(2024, 4, 1, 11, 0, tzinfo=UTC)  # local midnight of April 2nd
    assert auckland.last_start == datetime(2024, 3, 1, 11, 0, tzinfo=UTC)
    assert auckland.previous_end == auckland.last_start
    utc = velocity_windows(now, "Not/AZone")
    assert (utc.last_start, utc.last_end) == (
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2024, 4, 1, tzinfo=UTC),
    )
    assert utc.previous_start == datetime(2024, 1, 31, tzinfo=UTC)


def test_percent_change() -> None:
    assert percent_change(0, 0) == 0.0
    assert percent_change(3, 0) == 100.0
    assert percent_change(1, 3) == -66.7
    assert percent_change(5, 2) == 150.0


def test_eligibility_and_paging() -> None:
    two = {"multivariate": {"variants": [{"key": "control"}, {"key": "t"}]}}
    assert is_eligible_flag(two)
    assert not is_eligible_flag({"multivariate": {"variants": [{"key": "t"}, {"key": "control"}]}})
    assert not is_eligible_flag({"multivariate": {"variants": [{"key": "control"}]}})
    assert not is_eligible_flag({})
    assert paging(None, None) == (20, 0)
    assert paging("500", "-3") == (100, 0)
    with pytest.raises(InvalidPaging):
        paging("x", None)


def test_exposure_target() -> None:
    default = exposure_target("flag", None)
    assert default == (
        EXPOSURE_EVENT,
        "events",
        [{"key": "$feature_flag", "value": ["flag"], "operator": "exact", "type": "event"}],
    )
    custom = {
        "events": [{"id": "later", "order": 2}],
        "actions": [
            {"id": "7", "order": 1, "properties": {"type": "AND", "values": [{"key": "k", "value": 1}]}}
        ],
    }
    assert exposure_target("flag", custom) == (7, "actions", [{"key": "k", "value": 1, "type": "event"}])
    assert exposure_target("flag", {"events": [{"id": None}]})[0] == EXPOSURE_EVENT
    with pytest.raises(ValidationFailed, match="Invalid action ID"):
        exposure_target("flag", {"actions": [{"id": "seven"}]})


def test_event_matcher_applies_event_filters_only() -> None:
    criterion = ExposureCriterion(
        key="e",
        event_type="events",
        event_filters=[
            {"key": "$feature_flag", "value": ["f"], "operator": "exact", "type": "event"},
            {"key": "email", "value": "x", "operator": "exact", "type": "person"},
        ],
        since=None,
    )
    matches = event_matcher(criterion)
    assert matches({"$feature_flag": "f"}) and not matches({"$feature_flag": "g"}) and not matches({})


def test_flag_warning_and_holdout_variant() -> None:
    assert requires_flag_warning([]) is True
    assert requires_flag_warning([{"plan": "pro"}, {"$feature_flag": "x"}]) is True
    assert requires_flag_warning([{"$feature/checkout": "test"}]) is False
    assert with_holdout_variant(3, [{"rollout_percentage": 5, "variant": "old"}]) == [
        {"rollout_percentage": 5, "variant": "holdout-3"}
    ]
