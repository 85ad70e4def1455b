"""Metric validation, exposure criteria, saved-metric refs, entity references, uuids and orderings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.experiment_rules import validate_exposure_criteria, validate_saved_metrics_ids
from domain.metrics import (
    assign_metric_uuids,
    check_action_ids,
    check_event_names,
    collect_action_ids,
    collect_event_names,
    compute_ordering,
    has_legacy_metrics,
    is_legacy_metric,
    missing_actions_message,
    orderings_with_saved_metrics,
    sync_ordering_with_metrics,
    sync_ordering_with_saved_metrics,
    unknown_events_message,
    validate_metrics,
    validate_ordering_coverage,
)

MEAN = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "$pageview"},
}
FUNNEL = {
    "kind": "ExperimentMetric",
    "metric_type": "funnel",
    "series": [{"kind": "EventsNode", "event": "signup"}, {"kind": "ActionsNode", "id": 4}],
}
RATIO = {
    "kind": "ExperimentMetric",
    "metric_type": "ratio",
    "numerator": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
    "denominator": {"kind": "ActionsNode", "id": "7"},
}
RETENTION = {
    "kind": "ExperimentMetric",
    "metric_type": "retention",
    "start_event": {"kind": "EventsNode", "event": "  "},
    "completion_event": {"kind": "EventsNode", "event": "return"},
    "retention_window_start": 0,
    "retention_window_end": 7,
    "retention_window_unit": "day",
    "start_handling": "first_seen",
}
ID_HINT = (
    "EventsNode does not accept an 'id' field. "
    "To reference an event, use {'kind': 'EventsNode', 'event': '<event_name>'} (omit 'id'). "
    "To reference an action, switch to {'kind': 'ActionsNode', 'id': <integer_action_id>} (omit 'event')."
)


HINT = (
    "Expected either an event-based config like "
    "{'kind': 'ExperimentEventExposureConfig', 'event': '<event_name>', 'properties': []} "
    "or an action-based config like {'kind': 'ActionsNode', 'id': <action_id>}."
)
FTA = "exposure_criteria.filterTestAccounts must be a boolean,"
RETENTION_REQUIRED = (
    "completion_event", "retention_window_end", "retention_window_start", "retention_window_unit", "start_event",
    "start_handling",
)  # fmt: skip


def _raises(fn: Any, *args: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        fn(*args)
    return info.value


def _assert_error(err: ValidationFailed, detail: str, attr: str | None, code: str = "invalid_input") -> None:
    assert (err.detail, err.attr, err.code) == (detail, attr, code)


def _error(metrics: object, attr: str = "metrics") -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        validate_metrics(metrics, attr)
    return info.value


def _uuids(prefix: str = "new") -> Callable[[], str]:
    numbers: Iterator[int] = count(1)
    return lambda: f"{prefix}-{next(numbers)}"


# --- validate_metrics --------------------------------------------------------------------------------


def test_valid_metrics() -> None:
    validate_metrics(None)
    validate_metrics([])
    validate_metrics([MEAN, FUNNEL, RATIO, RETENTION, {**MEAN, "uuid": "u", "name": "n", "goal": "decrease"}])
    keys = ("table_name", "timestamp_field", "data_warehouse_join_key", "events_join_key")
    warehouse_step = {"kind": "ExperimentDataWarehouseNode", **{key: "x" for key in keys}}
    validate_metrics([{**FUNNEL, "series": [warehouse_step]}])


@pytest.mark.parametrize(
    ("metrics", "detail"),
    [
        ({"kind": "ExperimentMetric"}, "Metrics must be a list"),
        ([MEAN, "x"], "Invalid metric at index 1: must be a dict"),
        (
            [{"kind": "ExperimentTrendsQuery", "count_query": {}}],
            "Invalid metric at index 0: legacy metric kind 'ExperimentTrendsQuery' is no longer supported for new "
            "experiments. Use 'ExperimentMetric' instead.",
        ),
        (
            [{"kind": "ExperimentFunnelsQuery"}],
            "Invalid metric at index 0: legacy metric kind 'ExperimentFunnelsQuery' is no longer supported for new "
            "experiments. Use 'ExperimentMetric' instead.",
        ),
        ([{"kind": "TrendsQuery"}], "Invalid metric at index 0: metric kind must be 'ExperimentMetric'"),
        ([{"metric_type": "mean"}], "Invalid metric at index 0: metric kind must be 'ExperimentMetric'"),
        (
            [{**FUNNEL, "series": []}],
            "Invalid metric at index 0: funnel metrics require at least one step. "
            "The experiment exposure event is added as the initial step automatically.",
        ),
        (
            [{**MEAN, "extra": 1}],
            "Invalid metric at index 0: "
            "[{'loc': ('ExperimentMeanMetric', 'extra'), 'type': 'extra_forbidden', 'msg': 'Extra inputs are not permitted'}].",
        ),
        (
            [{"kind": "ExperimentMetric", "metric_type": "retention"}],
            "Invalid metric at index 0: ["
            + ", ".join(
                f"{{'loc': ('ExperimentRetentionMetric', '{f}'), 'type': 'missing', 'msg': 'Field required'}}"
                for f in RETENTION_REQUIRED
            )
            + "].",
        ),
    ],
)
def test_metric_errors(metrics: object, detail: str) -> None:
    err = _error(metrics)
    assert (err.detail, err.attr, err.code) == (detail, "metrics", "invalid_input")


def test_attr_names_the_secondary_field() -> None:
    assert _error("x", "metrics_secondary").attr == "metrics_secondary"


def test_unknown_metric_type_reports_every_union_member() -> None:
    detail = _error([{"kind": "ExperimentMetric"}]).detail
    for cls in (
        "ExperimentMeanMetric",
        "ExperimentFunnelMetric",
        "ExperimentRatioMetric",
        "ExperimentRetentionMetric",
    ):
        assert f"'loc': ('{cls}'," in detail


def test_events_node_with_id_gets_the_hint_and_is_narrowed_to_the_chosen_type() -> None:
    metric = {**MEAN, "source": {"kind": "EventsNode", "event": "x", "id": 3}}
    detail = _error([metric]).detail
    assert detail.startswith(
        "Invalid metric at index 0: [{'loc': ('ExperimentMeanMetric', 'source', 'EventsNode', 'id'), "
        "'type': 'extra_forbidden', 'msg': 'Extra inputs are not permitted'}, "
    )
    assert detail.endswith(f"]. {ID_HINT}")
    assert "ExperimentFunnelMetric" not in detail


def test_properties_must_be_a_list() -> None:
    metric = {**MEAN, "source": {"kind": "EventsNode", "event": "x", "properties": {"a": 1}}}
    assert (
        "{'loc': ('ExperimentMeanMetric', 'source', 'EventsNode', 'properties'), 'type': 'list_type', "
        "'msg': 'Input should be a valid list'}"
    ) in _error([metric]).detail


def test_long_error_lists_are_truncated_after_15() -> None:
    series = [{"kind": "EventsNode", "math": "nope"}] * 3
    detail = _error([{**FUNNEL, "series": series}]).detail
    assert detail.count("'loc':") == 15
    assert detail.endswith("more'}].")
    assert "{'truncated': '..." in detail


# --- exposure criteria -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (
            [],
            "exposure_criteria must be an object, got list. "
            "Expected shape: {'filterTestAccounts': <bool>, 'exposure_config': <object>}.",
        ),
        ({"filterTestAccounts": "yes"}, f"{FTA} got str: 'yes'."),
        ({"filterTestAccounts": None}, f"{FTA} got NoneType: None."),
        ({"filterTestAccounts": "x" * 100}, f"{FTA} got str: '{'x' * 79}...(truncated)."),
        ({"exposure_config": "e"}, f"exposure_criteria.exposure_config must be an object, got str. {HINT}"),
        (
            {"exposure_config": {"kind": "EventsNode", "event": "x"}},
            "exposure_criteria.exposure_config.kind must be one of ['ExperimentEventExposureConfig', 'ActionsNode'], "
            f"got 'EventsNode'. {HINT}",
        ),
        (
            {"exposure_config": {"kind": "ActionsNode"}},
            "Invalid exposure_criteria.exposure_config (kind='ActionsNode'): "
            f"[{{'loc': ('id',), 'type': 'missing', 'msg': 'Field required'}}]. {HINT}",
        ),
        (
            {"exposure_config": {"event": "$pageview", "properties": {}}},
            "Invalid exposure_criteria.exposure_config (kind='ExperimentEventExposureConfig'): "
            f"[{{'loc': ('properties',), 'type': 'list_type', 'msg': 'Input should be a valid list'}}]. {HINT}",
        ),
        (
            {"exposure_config": {"event": "$pageview", "properties": [], "id": 1}},
            "Invalid exposure_criteria.exposure_config (kind='ExperimentEventExposureConfig'): "
            f"[{{'loc': ('id',), 'type': 'extra_forbidden', 'msg': 'Extra inputs are not permitted'}}]. {HINT}",
        ),
    ],
)
def test_exposure_criteria_errors(value: object, detail: str) -> None:
    _assert_error(_raises(validate_exposure_criteria, value), detail, "exposure_criteria")


def test_exposure_criteria_accepted() -> None:
    validate_exposure_criteria(None)
    validate_exposure_criteria({"filterTestAccounts": False, "anything": 1})
    validate_exposure_criteria({"exposure_config": {"kind": "ActionsNode", "id": 4}})
    validate_exposure_criteria({"exposure_config": {"event": "$pageview", "properties": []}})


# --- saved_metrics_ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "detail", "code"),
    [
        ({"id": 1}, 'Expected a list of items but got type "dict".', "not_a_list"),
        ("abc", 'Expected a list of items but got type "str".', "not_a_list"),
        ([1], "Saved metric must be an object", "invalid_input"),
        ([{"metadata": {}}], "Saved metric must have an id", "invalid_input"),
        ([{"id": 1, "metadata": "primary"}], "Metadata must be an object", "invalid_input"),
        ([{"id": 1, "metadata": {}}], "Metadata must have a type key", "invalid_input"),
    ],
)
def test_saved_metrics_ids_shape(value: object, detail: str, code: str) -> None:
    _assert_error(_raises(validate_saved_metrics_ids, value), detail, "saved_metrics_ids", code)


def test_saved_metrics_ids_accepted() -> None:
    validate_saved_metrics_ids(None)
    validate_saved_metrics_ids([{"id": 1}, {"id": 2, "metadata": {"type": "secondary"}}])


# --- entity references -------------------------------------------------------------------------------


def test_collect_event_names_and_action_ids() -> None:
    metrics = [MEAN, FUNNEL, RATIO, RETENTION, "junk", {"metric_type": "mean"}]
    assert collect_event_names(metrics) == {"$pageview", "signup", "purchase", "return"}
    assert collect_action_ids(metrics) == {4, 7}
    assert collect_event_names(None) == set() and collect_action_ids([]) == set()


def test_messages() -> None:
    assert missing_actions_message({12, 3}) == (
        "Action(s) with ID 3, 12 not found or deleted. "
        "Each ActionsNode must reference an existing action belonging to this project."
    )
    assert unknown_events_message({"b", "a"}) == (
        "Event(s) 'a', 'b' not found. No events with these names have been ingested by this project. "
        "If you meant a different event, please correct it. Only if the user has explicitly confirmed they want "
        "to proceed with the unknown event (e.g. they will instrument it shortly), call again with "
        "allow_unknown_events=True. Do not flip the flag silently to bypass this check."
    )


def test_reference_checks() -> None:
    check_action_ids([FUNNEL, RATIO], [4, 7, 8])
    check_event_names([MEAN], ["$pageview"])
    with pytest.raises(ValidationFailed) as info:
        check_action_ids([FUNNEL, RATIO], [4])
    assert (info.value.detail, info.value.attr) == (missing_actions_message([7]), None)
    with pytest.raises(ValidationFailed) as info:
        check_event_names([MEAN, FUNNEL], ["signup"])
    assert info.value.detail == unknown_events_message(["$pageview"])


def test_legacy_detection() -> None:
    assert is_legacy_metric({"kind": "ExperimentFunnelsQuery"})
    assert not is_legacy_metric(MEAN) and not is_legacy_metric("x")
    assert has_legacy_metrics([MEAN], None, [{"kind": "ExperimentTrendsQuery"}])
    assert not has_legacy_metrics([MEAN], [FUNNEL])


# --- uuids -------------------------------------------------------------------------------------------


def test_assign_uuids_fills_and_deduplicates_across_lists() -> None:
    primary = [{**MEAN, "uuid": "a"}, {**MEAN}, {**MEAN, "uuid": "a"}, {**MEAN, "uuid": "saved"}]
    secondary = [{**MEAN, "uuid": "a"}, {**MEAN, "uuid": "b"}, {**MEAN, "uuid": ""}]
    new_primary, new_secondary = assign_metric_uuids(primary, secondary, ["saved"], _uuids())
    assert [m["uuid"] for m in new_primary or []] == ["a", "new-1", "new-2", "new-3"]
    assert [m["uuid"] for m in new_secondary or []] == ["new-4", "b", "new-5"]
    assert "uuid" not in primary[1]  # inputs untouched


def test_assign_uuids_keeps_none() -> None:
    assert assign_metric_uuids(None, None, [], _uuids()) == (None, None)


# --- orderings ---------------------------------------------------------------------------------------


def test_compute_ordering_appends_missing_in_metric_order() -> None:
    metrics = [{"uuid": "a"}, {"uuid": "b"}, {"uuid": "c"}, {}]
    assert compute_ordering(["c", "x"], metrics) == ["c", "x", "a", "b"]
    assert compute_ordering(None, metrics) == ["a", "b", "c"]


def test_saved_metrics_orderings_on_create() -> None:
    saved = [("s1", {"type": "primary"}), ("s2", {"type": "secondary"}), ("s3", None), (None, {}), ("s4", {})]
    assert orderings_with_saved_metrics(["a"], None, saved) == (["a", "s1", "s3", "s4"], ["s2"])
    assert orderings_with_saved_metrics(None, None, [("s1", {"type": "primary"})]) == (["s1"], [])
    assert orderings_with_saved_metrics(["s1"], None, [("s1", None)]) == (["s1"], None)


BUG = "This is likely a frontend bug - please refresh and try again."


@pytest.mark.parametrize(
    ("primary_order", "secondary_order", "detail"),
    [
        (None, [], f"primary_metrics_ordered_uuids is null but primary metrics exist. {BUG}"),
        (["a"], [], f"primary_metrics_ordered_uuids is missing UUIDs: ['b', 's1']. {BUG}"),
        (
            ["a", "b", "s1"],
            None,
            f"secondary_metrics_ordered_uuids is null but secondary metrics exist. {BUG}",
        ),
        (["a", "b", "s1"], ["c"], f"secondary_metrics_ordered_uuids is missing UUIDs: ['s2']. {BUG}"),
    ],
)
def test_ordering_coverage_errors(primary_order: Any, secondary_order: Any, detail: str) -> None:
    saved = [("s1", None), ("s2", {"type": "secondary"})]
    with pytest.raises(ValidationFailed) as info:
        validate_ordering_coverage(
            primary_order, secondary_order, [{"uuid": "a"}, {"uuid": "b"}], [{"uuid": "c"}], saved
        )
    assert (info.value.detail, info.value.attr) == (detail, None)


def test_ordering_coverage_passes() -> None:
    validate_ordering_coverage(None, None, [], None)
    validate_ordering_coverage(["b", "a", "extra"], ["c"], [{"uuid": "a"}, {"uuid": "b"}], [{"uuid": "c"}])


def test_update_ordering_for_inline_metrics() -> None:
    old = [{"uuid": "a"}, {"uuid": "b"}]
    assert sync_ordering_with_metrics(old, [{"uuid": "b"}, {"uuid": "a"}], ["a", "b"]) is None
    new = [{"uuid": "b"}, {"uuid": "d"}, {"uuid": "c"}]
    assert sync_ordering_with_metrics(old, new, ["x", "a", "b"]) == ["x", "b", "d", "c"]
    assert sync_ordering_with_metrics(None, [{"uuid": "a"}], None) == ["a"]
    assert sync_ordering_with_metrics(old, [], ["b", "a"]) == []


def test_update_ordering_for_saved_metrics() -> None:
    stored = ["a", "s1"]
    assert sync_ordering_with_saved_metrics(stored, {"s1"}, ["s1"], None, order_sent=False) is None
    # Bookkeeping only: no ordering sent, or the sent one equals the automatic result.
    assert sync_ordering_with_saved_metrics(stored, {"s1"}, ["s2"], None, order_sent=False) == (
        ["a", "s2"],
        True,
    )
    assert sync_ordering_with_saved_metrics(stored, {"s1"}, ["s2"], ["a", "s2"], order_sent=True) == (
        ["a", "s2"],
        True,
    )
    # A real reorder keeps the user's order and folds in the add/remove.
    reorder = sync_ordering_with_saved_metrics(stored, {"s1"}, ["s2"], ["s1", "b", "a"], order_sent=True)
    assert reorder == (["b", "a", "s2"], False)
    assert sync_ordering_with_saved_metrics(None, set(), ["s9"], None, order_sent=True) == (["s9"], False)
