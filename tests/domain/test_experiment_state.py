"""The experiment workflow's state and its pure transitions, without Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import operation_ids
from domain.experiment_messages import (
    AppliedRecord,
    ExperimentSnapshot,
    HistoryEntry,
    PendingChange,
    Truth,
    WorkflowInput,
)
from domain.experiment_state import (
    HISTORY_LIMIT,
    RESULTS_LIMIT,
    ExperimentState,
    recalculation_reason,
)
from domain.scheduling import ScheduledAction

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
WORKFLOW_ID = "experiment-1-7"


def snapshot(**fields: Any) -> ExperimentSnapshot:
    base: dict[str, Any] = {
        "project_id": 1,
        "experiment_id": 7,
        "name": "Checkout",
        "flag_id": 3,
        "flag_key": "checkout",
        "flag_active": False,
        "flag_variant_keys": ["control", "test"],
    }
    return ExperimentSnapshot(**(base | fields))


DRAFT = snapshot()
RUNNING = snapshot(start_date=T0, flag_active=True, version=1)
PAUSED = snapshot(start_date=T0, flag_active=False, version=2)
STOPPED = snapshot(start_date=T0, end_date=T0 + timedelta(days=3), flag_active=True, version=3)


def state(snap: ExperimentSnapshot | None = DRAFT, **fields: Any) -> ExperimentState:
    return ExperimentState(project_id=1, experiment_id=7, snapshot=snap, **fields)


def pending(cr_id: str, operation: str = "launch", expires: datetime = T0) -> PendingChange:
    return PendingChange(change_request_id=cr_id, operation=operation, expires_at=expires)


# ---- accept and note ---------------------------------------------------------------------------


def test_accept_takes_the_snapshot_records_the_transition_and_its_result() -> None:
    s = state(DRAFT)
    entry = s.accept(
        operation="launch", via="rest", actor_id=5, before=DRAFT, snapshot=RUNNING, at=T0, update_id="u1"
    )
    assert s.snapshot == RUNNING
    assert s.history == [entry]
    assert (entry.outcome, entry.from_status, entry.to_status, entry.version) == (
        "accepted",
        "draft",
        "running",
        1,
    )
    assert s.cached("u1") == RUNNING
    assert s.cached("u2") is None and s.cached(None) is None


def test_accept_without_an_update_id_keeps_no_result() -> None:
    s = state(RUNNING)
    s.accept(
        operation="pause", via="signal", actor_id=None, before=RUNNING, snapshot=PAUSED, at=T0, update_id=None
    )
    assert s.results == {} and s.history[-1].via == "signal"


def test_note_records_without_changing_the_experiment() -> None:
    s = state(RUNNING)
    entry = s.note(operation="resume", outcome="rejected", via="signal", actor_id=None, detail="no", at=T0)
    assert s.snapshot == RUNNING
    assert (entry.from_status, entry.to_status, entry.detail) == ("running", "running", "no")


def test_history_is_bounded_to_the_newest_entries() -> None:
    s = state(RUNNING)
    for i in range(HISTORY_LIMIT + 5):
        s.note(operation="x", outcome="rejected", via="signal", actor_id=None, detail=str(i), at=T0)
    assert len(s.history) == HISTORY_LIMIT
    assert s.history[0].detail == "5" and s.history[-1].detail == str(HISTORY_LIMIT + 4)


# ---- adopt ------------------------------------------------------------------------------------


def applied(update_id: str | None, result: ExperimentSnapshot, operation: str = "pause") -> AppliedRecord:
    op_id = (
        operation_ids.update_operation_id(WORKFLOW_ID, update_id)
        if update_id
        else operation_ids.event_operation_id(WORKFLOW_ID, result.version, operation, "signal")
    )
    return AppliedRecord(op_id=op_id, operation=operation, at=T0, result=result)


def test_adopt_takes_the_row_and_recovers_updates_history_never_saw_in_version_order() -> None:
    s = state(DRAFT)
    s.accept(
        operation="launch", via="rest", actor_id=None, before=DRAFT, snapshot=RUNNING, at=T0, update_id="a"
    )
    s.note(operation="reset", outcome="rejected", via="signal", actor_id=None, detail="no", at=T0)
    later = STOPPED.model_copy(update={"version": 4})
    truth = Truth(
        snapshot=later,
        applied=[
            applied("a", RUNNING, "launch"),  # known already: not recorded twice
            applied("b", PAUSED),  # lost by the server: recovered
            applied(None, STOPPED, "end"),  # not an update: nothing to answer a retry with
        ],
    )
    s.adopt(truth, WORKFLOW_ID)
    assert s.snapshot == later
    assert [e.update_id for e in s.history if e.outcome == "accepted"] == ["a", "b"]
    recovered = next(e for e in s.history if e.update_id == "b")
    assert (recovered.detail, recovered.to_status, recovered.version) == (
        "recovered from the database",
        "paused",
        2,
    )
    assert s.cached("b") == PAUSED


def test_a_recovered_entry_goes_before_newer_versions() -> None:
    s = state(RUNNING)
    s.accept(
        operation="end", via="rest", actor_id=None, before=PAUSED, snapshot=STOPPED, at=T0, update_id="end"
    )
    s.adopt(Truth(snapshot=STOPPED, applied=[applied("p", PAUSED)]), WORKFLOW_ID)
    assert [e.update_id for e in s.history] == ["p", "end"]


def test_an_update_adopted_before_its_handler_finished_stays_one_entry() -> None:
    """Runs recorded before the recheck under the lock ran the activity again and accepted it."""
    s = state(RUNNING)
    s.adopt(Truth(snapshot=PAUSED, applied=[applied("p", PAUSED)]), WORKFLOW_ID)
    s.accept(
        operation="pause", via="rest", actor_id=None, before=RUNNING, snapshot=PAUSED, at=T0, update_id="p"
    )
    assert [e.update_id for e in s.history] == ["p"]
    assert s.history[0].detail == "recovered from the database"
    assert s.cached("p") == PAUSED


def test_adopt_ignores_another_workflows_operations() -> None:
    s = state(RUNNING)
    other = AppliedRecord(
        op_id=operation_ids.update_operation_id("experiment-1-8", "x"),
        operation="pause",
        at=T0,
        result=PAUSED,
    )
    s.adopt(Truth(snapshot=RUNNING, applied=[other]), WORKFLOW_ID)
    assert s.history == [] and s.results == {}


# ---- carry over -------------------------------------------------------------------------------


def test_carry_over_round_trips_and_bounds_what_it_carries() -> None:
    s = state(RUNNING, pending={"cr": pending("cr")})
    for i in range(RESULTS_LIMIT + 3):
        s.accept(
            operation="pause",
            via="rest",
            actor_id=None,
            before=RUNNING,
            snapshot=PAUSED,
            at=T0,
            update_id=f"u{i}",
        )
    carried = s.carry_over()
    assert isinstance(carried, WorkflowInput)
    assert len(carried.results) == RESULTS_LIMIT and "u0" not in carried.results
    assert f"u{RESULTS_LIMIT + 2}" in carried.results
    again = ExperimentState.from_input(WorkflowInput.model_validate_json(carried.model_dump_json()))
    assert again.snapshot == s.snapshot
    assert again.history == s.history
    assert list(again.pending) == ["cr"]
    assert again.recalculations == [] and not again.abandoned


# ---- finished, live ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snap", "abandoned", "finished", "live"),
    [
        (None, False, False, False),
        (DRAFT, False, False, True),
        (DRAFT.model_copy(update={"deleted": True}), False, True, False),
        (None, True, True, False),
    ],
)
def test_finished_and_live(
    snap: ExperimentSnapshot | None, abandoned: bool, finished: bool, live: bool
) -> None:
    s = state(snap, abandoned=abandoned)
    assert s.finished is finished
    assert (s.live is not None) is live


# ---- approvals --------------------------------------------------------------------------------


def test_a_gated_change_is_kept_until_it_expires() -> None:
    s = state(DRAFT)
    info = {"change_request_id": "cr1", "expires_at": (T0 + timedelta(days=1)).isoformat()}
    assert s.await_approval("launch", 5, info) is True
    assert s.pending["cr1"].operation == "launch" and s.pending["cr1"].requested_by == 5
    assert s.next_deadline() == T0 + timedelta(days=1)
    assert s.expired(T0) == []
    assert s.expired(T0 + timedelta(days=1)) == [s.pending["cr1"]]


@pytest.mark.parametrize(
    "info",
    [
        {},
        {"change_request_id": "cr1"},  # no deadline: nothing to wait for
        {"change_request_id": "cr1", "expires_at": T0.isoformat(), "pending": True},  # asked before
    ],
)
def test_nothing_new_to_keep(info: dict[str, Any]) -> None:
    s = state(DRAFT)
    assert s.await_approval("launch", None, info) is False
    assert s.pending == {}


# ---- deadlines --------------------------------------------------------------------------------


def test_no_deadline_without_anything_scheduled() -> None:
    assert state(RUNNING).next_deadline() is None
    assert state(None).next_deadline() is None


def test_the_scheduled_end_is_the_deadline_unless_given_up() -> None:
    end_at = T0 + timedelta(days=14)
    s = state(RUNNING.model_copy(update={"scheduling_config": {"end_at": end_at.isoformat()}}))
    scheduled = s.scheduled()
    assert scheduled == ScheduledAction("end", end_at, "end")
    assert s.next_deadline() == end_at
    s.gave_up.add(scheduled)
    assert s.next_deadline() is None


def test_a_scheduled_ship_waiting_for_approval_is_held_back() -> None:
    end_at = T0 + timedelta(days=14)
    config = {"end_at": end_at.isoformat(), "ship_variant_key": "test"}
    s = state(RUNNING.model_copy(update={"scheduling_config": config}))
    expiry = T0 + timedelta(days=30)
    s.pending["cr"] = pending("cr", "ship_variant", expiry)
    scheduled = s.scheduled()
    assert scheduled is not None and s.holds_back(scheduled)
    assert s.next_deadline() == expiry  # only the change's expiry


def test_a_deleted_experiment_has_no_deadline_but_its_pending_expiries() -> None:
    config = {"end_at": (T0 + timedelta(days=1)).isoformat(), "autopilot": {"srm": {}}}
    s = state(RUNNING.model_copy(update={"scheduling_config": config, "deleted": True}))
    assert s.scheduled() is None and s.evaluation_due() is None and s.next_deadline() is None


def test_the_earliest_deadline_wins() -> None:
    config = {
        "end_at": (T0 + timedelta(days=14)).isoformat(),
        "autopilot": {"srm": {}, "check_every_hours": 6},
    }
    s = state(RUNNING.model_copy(update={"scheduling_config": config}))
    assert s.next_deadline() == T0 + timedelta(hours=6)  # the first evaluation
    s.pending["cr"] = pending("cr", expires=T0 + timedelta(hours=1))
    assert s.next_deadline() == T0 + timedelta(hours=1)


def test_the_autopilot_evaluates_only_while_running() -> None:
    config = {"autopilot": {"srm": {}, "check_every_hours": 6}}
    assert state(DRAFT.model_copy(update={"scheduling_config": config})).evaluation_due() is None
    assert state(PAUSED.model_copy(update={"scheduling_config": config})).evaluation_due() is None
    assert state(STOPPED.model_copy(update={"scheduling_config": config})).evaluation_due() is None
    assert state(RUNNING.model_copy(update={"scheduling_config": config})).evaluation_due() == T0 + timedelta(
        hours=6
    )


def test_after_a_failed_evaluation_the_next_waits_a_full_interval() -> None:
    config = {"autopilot": {"srm": {}, "check_every_hours": 6}}
    failed_at = T0 + timedelta(hours=6, minutes=1)
    s = state(RUNNING.model_copy(update={"scheduling_config": config}), evaluation_failed_at=failed_at)
    assert s.evaluation_due() == failed_at + timedelta(hours=6)
    s.evaluation_failed_at = None
    assert s.evaluation_due() == T0 + timedelta(hours=6)


# ---- recalculation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        (None, DRAFT, None),  # a create
        (DRAFT, RUNNING, "experiment_launch"),
        (RUNNING, PAUSED, None),
        (PAUSED, STOPPED, "experiment_stop"),
        (STOPPED, DRAFT, None),  # a reset
        (DRAFT, DRAFT.model_copy(update={"end_date": T0}), None),  # ended before it started
    ],
)
def test_launch_and_end_refresh_the_results(
    before: ExperimentSnapshot | None, after: ExperimentSnapshot, reason: str | None
) -> None:
    assert recalculation_reason(before, after) == reason


def test_history_entries_are_plain_messages() -> None:
    s = state(DRAFT)
    entry = s.accept(
        operation="launch", via="rest", actor_id=None, before=DRAFT, snapshot=RUNNING, at=T0, update_id=None
    )
    assert HistoryEntry.model_validate_json(entry.model_dump_json()) == entry
