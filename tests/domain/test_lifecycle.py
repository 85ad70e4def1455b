"""Every cell of the lifecycle table (domain/lifecycle.py): each operation from each state either
fails with PostHog's exact message or has exactly its effect."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.lifecycle import OPERATIONS, Effect, Intent, LifecycleFacts, Operation, plan, rewritten_filters

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 20, tzinfo=UTC)
KEYS = ("control", "test")

STATES: dict[str, LifecycleFacts] = {
    "draft": LifecycleFacts(None, None, False, False, flag_variant_keys=KEYS),
    "running": LifecycleFacts(START, None, False, True, flag_variant_keys=KEYS),
    "paused": LifecycleFacts(START, None, False, False, flag_variant_keys=KEYS),
    "stopped": LifecycleFacts(START, END, False, True, flag_variant_keys=KEYS),
    "archived": LifecycleFacts(START, END, True, True, flag_variant_keys=KEYS),
}

NOT_LAUNCHED = "Experiment has not been launched yet."
ENDED = "Experiment has already ended."
# (state, operation) -> the refusal; every other cell is allowed.
REFUSED: dict[tuple[str, Operation], str] = {
    ("running", "launch"): "Experiment has already been launched.",
    ("paused", "launch"): "Experiment has already been launched.",
    ("stopped", "launch"): "Experiment has already been launched.",
    ("archived", "launch"): "Experiment has already been launched.",
    ("draft", "pause"): NOT_LAUNCHED,
    ("paused", "pause"): "Experiment is already paused.",
    ("stopped", "pause"): ENDED,
    ("archived", "pause"): ENDED,
    ("draft", "resume"): NOT_LAUNCHED,
    ("running", "resume"): "Experiment is not paused.",
    ("stopped", "resume"): ENDED,
    ("archived", "resume"): ENDED,
    ("draft", "end"): NOT_LAUNCHED,
    ("stopped", "end"): ENDED,
    ("archived", "end"): ENDED,
    ("draft", "reset"): "Experiment is already in draft state.",
    ("draft", "archive"): "Experiment must be ended before it can be archived.",
    ("running", "archive"): "Experiment must be ended before it can be archived.",
    ("paused", "archive"): "Experiment must be ended before it can be archived.",
    ("archived", "archive"): "Experiment is already archived.",
    ("draft", "unarchive"): "Experiment is not archived.",
    ("running", "unarchive"): "Experiment is not archived.",
    ("paused", "unarchive"): "Experiment is not archived.",
    ("stopped", "unarchive"): "Experiment is not archived.",
    ("draft", "ship_variant"): NOT_LAUNCHED,
}

SHIP = Intent(variant_key="test", conclusion="won", conclusion_comment="clear", conclusion_provided=True)


def expected_effect(state: str, operation: Operation) -> dict[str, Any]:
    facts = STATES[state]
    base = {"start_date": facts.start_date, "end_date": facts.end_date, "archived": facts.archived}
    changes: dict[Operation, dict[str, Any]] = {
        "launch": {"start_date": NOW, "flag_active": True, "refresh_fingerprints": True},
        "pause": {"flag_active": False},
        "resume": {"flag_active": True},
        "end": {"end_date": NOW, "conclusion": ("won", "clear")},
        "reset": {"start_date": None, "end_date": None, "archived": False, "conclusion": (None, None)},
        "archive": {"archived": True},
        "unarchive": {"archived": False},
        "ship_variant": {
            "end_date": facts.end_date or NOW,
            "ship_variant_key": "test",
            "conclusion": ("won", "clear"),
        },
    }
    return base | changes[operation]


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("state", list(STATES))
def test_every_cell(state: str, operation: Operation) -> None:
    facts = STATES[state]
    refusal = REFUSED.get((state, operation))
    if refusal is not None:
        with pytest.raises(ValidationFailed) as refused:
            plan(operation, facts, SHIP, NOW)
        assert refused.value.detail == refusal
        return
    effect = plan(operation, facts, SHIP, NOW)
    defaults = {
        "flag_active": None,
        "ship_variant_key": None,
        "release_to_everyone": False,
        "conclusion": None,
        "scheduling_config": None,
        "refresh_fingerprints": False,
    }
    assert effect == Effect(**(defaults | expected_effect(state, operation)))


def test_flag_rules_are_part_of_the_table() -> None:
    deleted = replace(STATES["draft"], flag_deleted=True)
    with pytest.raises(ValidationFailed, match="its feature flag has been deleted"):
        plan("launch", deleted, Intent(), NOW)
    one_variant = replace(STATES["draft"], flag_variant_keys=("control",))
    with pytest.raises(ValidationFailed, match="at least"):
        plan("launch", one_variant, Intent(), NOW)
    no_flag = replace(STATES["running"], has_flag=False)
    for operation in ("pause", "resume"):
        with pytest.raises(ValidationFailed, match="does not have a feature flag linked"):
            plan(operation, replace(no_flag, flag_active=operation == "resume"), Intent(), NOW)
    with pytest.raises(ValidationFailed, match=r"Variant 'nope' not found on feature flag\."):
        plan("ship_variant", STATES["running"], Intent(variant_key="nope"), NOW)


def test_ship_keeps_the_conclusion_unless_sent_and_rewrites_the_flag() -> None:
    effect = plan("ship_variant", STATES["stopped"], Intent(variant_key="test"), NOW)
    assert effect.conclusion is None and effect.end_date == END  # shipping after the end keeps it
    filters = {"groups": [{"properties": [], "rollout_percentage": 100}], "multivariate": {"variants": [
        {"key": "control", "rollout_percentage": 50}, {"key": "test", "rollout_percentage": 50}]}}  # fmt: skip
    rewritten = rewritten_filters(effect, filters)
    assert rewritten is not None
    assert [v["rollout_percentage"] for v in rewritten["multivariate"]["variants"]] == [0, 100]
    assert rewritten_filters(plan("pause", STATES["running"], Intent(), NOW), filters) is None


def test_schedules_are_marked_by_the_timer_and_cancelled_by_a_manual_end() -> None:
    config = {"end_at": "2026-12-31T00:00:00+00:00"}
    running = replace(STATES["running"], scheduling_config=config)
    by_timer = plan("end", running, Intent(via="timer"), NOW).scheduling_config
    assert by_timer is not None and by_timer["status"]["end"]["state"] == "done"
    by_hand = plan("end", running, Intent(), NOW).scheduling_config
    assert by_hand is not None and by_hand["status"]["end"]["state"] == "cancelled"
    assert plan("pause", running, Intent(), NOW).scheduling_config is config  # untouched
