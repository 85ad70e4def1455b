"""What the experiment workflow holds, and its pure transitions.

The workflow (workflows/experiment.py) owns one `ExperimentState`: its handlers run activities and
talk to Temporal, and every decision about the state itself — taking an accepted transition into
history, adopting the database's truth, which deadline comes next, what continue-as-new carries —
is a method here, with the time and ids it needs passed in. No Temporal import, so it is unit-tested
directly (tests/domain/test_experiment_state.py) and replays cannot depend on anything but its
inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain import operation_ids
from domain.autopilot.rules import rules_of
from domain.autopilot.timing import next_evaluation
from domain.experiment_messages import (
    ExperimentSnapshot,
    HistoryEntry,
    PendingChange,
    Truth,
    WorkflowInput,
)
from domain.scheduling import ScheduledAction, next_action

# What one run keeps and continue-as-new carries: enough for the history query and for retried
# update ids (the server's own dedup is per run), bounded so the input stays small.
HISTORY_LIMIT = 1000
RESULTS_LIMIT = 200


@dataclass
class ExperimentState:
    project_id: int
    experiment_id: int
    snapshot: ExperimentSnapshot | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    # update id -> the snapshot its transition returned (a retried update id gets it again).
    results: dict[str, ExperimentSnapshot] = field(default_factory=dict)
    pending: dict[str, PendingChange] = field(default_factory=dict)
    # Reasons for a metrics recalculation, queued for the run loop (no caller waits for them).
    recalculations: list[str] = field(default_factory=list)
    # The create failed: nothing exists for this run to look after.
    abandoned: bool = False
    # When an autopilot evaluation could not run: the next one waits a full interval.
    evaluation_failed_at: datetime | None = None
    # Scheduled actions that failed and could not even be marked failed (this run only).
    gave_up: set[ScheduledAction] = field(default_factory=set)

    @classmethod
    def from_input(cls, inp: WorkflowInput) -> ExperimentState:
        return cls(
            project_id=inp.project_id,
            experiment_id=inp.experiment_id,
            snapshot=inp.snapshot,
            history=list(inp.history),
            results=dict(inp.results),
            pending={p.change_request_id: p for p in inp.pending},
        )

    def carry_over(self) -> WorkflowInput:
        """The next run's input: the newest history and results, every pending change."""
        return WorkflowInput(
            project_id=self.project_id,
            experiment_id=self.experiment_id,
            snapshot=self.snapshot,
            history=self.history[-HISTORY_LIMIT:],
            results=dict(list(self.results.items())[-RESULTS_LIMIT:]),
            pending=list(self.pending.values()),
        )

    @property
    def finished(self) -> bool:
        """Nothing left to look after: the create failed, or the experiment was soft-deleted."""
        return self.abandoned or (self.snapshot is not None and self.snapshot.deleted)

    @property
    def live(self) -> ExperimentSnapshot | None:
        """The experiment, unless it does not exist (yet) or is deleted."""
        snapshot = self.snapshot
        return None if snapshot is None or snapshot.deleted else snapshot

    def cached(self, update_id: str | None) -> ExperimentSnapshot | None:
        """A retried update id (Idempotency-Key) gets its first result, across continue-as-new."""
        return self.results.get(update_id) if update_id else None

    # ---- history --------------------------------------------------------------------------

    def accept(
        self,
        *,
        operation: str,
        via: str,
        actor_id: int | None,
        before: ExperimentSnapshot | None,
        snapshot: ExperimentSnapshot,
        at: datetime,
        update_id: str | None,
        evidence: dict[str, Any] | None = None,
    ) -> HistoryEntry:
        """Take a transition the database applied: the new snapshot, its history entry, and the
        result a retry of its update id gets. An update id already in history (adopted from the
        database meanwhile, in runs from before the recheck under the lock) keeps its one entry."""
        self.snapshot = snapshot
        entry = HistoryEntry(
            operation=operation,
            outcome="accepted",
            via=via,  # type: ignore[arg-type]
            actor_id=actor_id,
            at=at,
            from_status=before.status if before else None,
            to_status=snapshot.status,
            update_id=update_id,
            version=snapshot.version,
            evidence=evidence,
        )
        if update_id is None or update_id not in self.results:
            self._remember(entry)
        if update_id is not None:
            self.results[update_id] = snapshot
        return entry

    def note(
        self,
        *,
        operation: str,
        outcome: str,
        via: str,
        actor_id: int | None,
        detail: str,
        at: datetime,
        evidence: dict[str, Any] | None = None,
    ) -> HistoryEntry:
        """Record what did not change the experiment (a refusal, a failure, a shadow decision)."""
        snapshot = self.snapshot
        entry = HistoryEntry(
            operation=operation,
            outcome=outcome,  # type: ignore[arg-type]
            via=via,  # type: ignore[arg-type]
            actor_id=actor_id,
            at=at,
            from_status=snapshot.status if snapshot else None,
            to_status=snapshot.status if snapshot else None,
            detail=detail,
            evidence=evidence,
        )
        self._remember(entry)
        return entry

    def adopt(self, truth: Truth, workflow_id: str) -> None:
        """Take the database's state, and record operations it applied that we never saw.

        That happens when the server discards the workflow task that ran a local activity (it
        aborts in-flight updates under contention): the write committed, the history lost it.
        Recording it keeps history, state and row in agreement, and a retried update id then
        returns its first result.
        """
        for record in truth.applied:
            update_id = operation_ids.update_id_of(workflow_id, record.op_id)
            if update_id is None or update_id in self.results:
                continue
            self.results[update_id] = record.result
            self._insert_in_order(
                HistoryEntry(
                    operation=record.operation or "update",
                    outcome="accepted",
                    via="rest",
                    at=record.at,
                    to_status=record.result.status,
                    detail="recovered from the database",
                    update_id=update_id,
                    version=record.result.version,
                )
            )
        self.snapshot = truth.snapshot

    def _insert_in_order(self, entry: HistoryEntry) -> None:
        """Place a recovered transition where its row version says it happened."""
        position = len(self.history)
        while position > 0:
            previous = self.history[position - 1].version
            if previous is None or entry.version is None or previous < entry.version:
                break
            position -= 1
        self.history.insert(position, entry)
        del self.history[:-HISTORY_LIMIT]

    def _remember(self, entry: HistoryEntry) -> None:
        self.history.append(entry)
        del self.history[:-HISTORY_LIMIT]

    # ---- approvals ------------------------------------------------------------------------

    def await_approval(self, operation: str, actor_id: int | None, info: dict[str, Any]) -> bool:
        """Keep a gated change (the gate's details) until it is approved, rejected, cancelled or
        expires. False when there is nothing new to keep (already pending, or no deadline)."""
        cr_id = info.get("change_request_id")
        if not cr_id or info.get("pending") or not info.get("expires_at"):
            return False
        self.pending[cr_id] = PendingChange.model_validate(
            {"change_request_id": cr_id, "operation": operation, "expires_at": info["expires_at"],
             "requested_by": actor_id}
        )  # fmt: skip
        return True

    # ---- deadlines ------------------------------------------------------------------------

    def scheduled(self) -> ScheduledAction | None:
        """The next action of `scheduling_config` (launch, end, ship), if any."""
        snapshot = self.live
        if snapshot is None:
            return None
        return next_action(
            snapshot.scheduling_config, start_date=snapshot.start_date, end_date=snapshot.end_date
        )

    def holds_back(self, scheduled: ScheduledAction) -> bool:
        """A scheduled ship that is waiting for approval must not fire again meanwhile."""
        return scheduled.operation == "ship_variant" and any(
            p.operation == "ship_variant" for p in self.pending.values()
        )

    def evaluation_due(self) -> datetime | None:
        """When the autopilot evaluates next (None: no rules, or not running)."""
        snapshot = self.live
        if snapshot is None:
            return None
        due = next_evaluation(
            snapshot.scheduling_config,
            start_date=snapshot.start_date,
            end_date=snapshot.end_date,
            running=snapshot.status.value == "running",
        )
        failed = self.evaluation_failed_at
        rules = rules_of(snapshot.scheduling_config)
        if due is not None and failed is not None and rules is not None and due <= failed:
            return failed + timedelta(hours=rules.check_every_hours)
        return due

    def next_deadline(self) -> datetime | None:
        """The earliest of: a pending change's expiry, the scheduled action, the next evaluation.

        None when nothing is scheduled, so the run loop creates no timer at all (histories
        recorded before deadlines existed replay unchanged)."""
        deadlines = [p.expires_at for p in self.pending.values()]
        scheduled = self.scheduled()
        if scheduled is not None and not self.holds_back(scheduled) and scheduled not in self.gave_up:
            deadlines.append(scheduled.at)
        evaluation = self.evaluation_due()
        if evaluation is not None:
            deadlines.append(evaluation)
        return min(deadlines) if deadlines else None

    def expired(self, due: datetime) -> list[PendingChange]:
        """Pending changes whose deadline has passed by `due`."""
        return [p for p in self.pending.values() if p.expires_at <= due]


def recalculation_reason(before: ExperimentSnapshot | None, after: ExperimentSnapshot) -> str | None:
    """Launch and end refresh the results (a create, with no `before`, does not)."""
    if before is None:
        return None
    if before.start_date is None and after.start_date is not None:
        return "experiment_launch"
    if before.end_date is None and after.end_date is not None and after.start_date is not None:
        return "experiment_stop"
    return None
