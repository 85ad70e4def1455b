"""State and machinery of the experiment workflow, shared by its update and signal handlers.

Deterministic and side-effect free: imported inside the workflow sandbox (passed through).
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from activities.experiments import ExperimentActivities
from domain import operation_ids
from domain.errors import DomainError
from domain.experiment_messages import (
    ActivityInput,
    ExperimentSnapshot,
    HistoryEntry,
    PendingChange,
    RecordInput,
    TransitionRequest,
    Truth,
    WorkflowInput,
)
from domain.lifecycle import Operation, check
from workflows import experiment_support as support
from workflows.patches import ACTIVITY_CHECKS_THE_ROW, SKIP_RECALCULATION_WITHOUT_METRICS

HISTORY_LIMIT = 1000
RESULTS_LIMIT = 200


class ExperimentCore:
    def _setup(self, inp: WorkflowInput) -> None:
        self._project_id = inp.project_id
        self._experiment_id = inp.experiment_id
        self._snapshot: ExperimentSnapshot | None = inp.snapshot
        self._history: list[HistoryEntry] = list(inp.history)
        self._results: dict[str, ExperimentSnapshot] = dict(inp.results)
        self._pending: dict[str, PendingChange] = {p.change_request_id: p for p in inp.pending}
        self._busy = False
        self._wake = False  # a handler changed what the run loop waits for
        self._lock = asyncio.Lock()
        self._abandoned = False
        self._recalculations: list[str] = []  # reasons queued for the run loop
        # What visibility shows now; the start carried status and flag key but never the name.
        self._published: support.Published | None = None

    @property
    def _finished(self) -> bool:
        return self._abandoned or (self._snapshot is not None and self._snapshot.deleted)

    def _carry_over(self) -> WorkflowInput:
        return WorkflowInput(
            project_id=self._project_id,
            experiment_id=self._experiment_id,
            snapshot=self._snapshot,
            history=self._history[-HISTORY_LIMIT:],
            results=dict(list(self._results.items())[-RESULTS_LIMIT:]),
            pending=list(self._pending.values()),
        )

    # ---- checks ---------------------------------------------------------------------------

    def _validate(self, operation: Operation, req: TransitionRequest) -> None:
        """Sync and side-effect free: a rejection here writes nothing to history."""
        if self._cached() is not None:
            return
        support.check_deadline(req.apply_by)
        if self._busy:
            raise support.busy()
        self._check(operation, req)

    def _check(self, operation: Operation, req: TransitionRequest) -> None:
        snapshot = self._snapshot
        if snapshot is None or snapshot.deleted:
            raise support.not_found()
        try:
            check(operation, snapshot.newest(req.observed).facts(), req.intent())
        except DomainError as err:
            raise support.rejection(err) from None

    # ---- transitions ----------------------------------------------------------------------

    async def _transition(self, operation: Operation, req: TransitionRequest) -> ExperimentSnapshot:
        cached = self._cached()
        if cached is not None:
            return cached
        self._busy = True  # before the first await: the next validator sees it (notes §1.2)
        try:
            async with self._lock:
                return await self._apply(operation, req, self._op_id(operation))
        finally:
            self._busy = False

    async def _apply(self, operation: Operation, req: TransitionRequest, op_id: str) -> ExperimentSnapshot:
        """Write through the activity (which checks the row: the one check besides the update
        validator's), record the transition."""
        before = self._require_snapshot()
        self._snapshot = before.newest(req.observed)
        if not workflow.patched(ACTIVITY_CHECKS_THE_ROW):
            self._check(operation, req)  # histories recorded before it checked here a second time
        inp = ActivityInput(
            op_id=op_id,
            operation=operation,
            project_id=self._project_id,
            experiment_id=self._experiment_id,
            now=workflow.now(),
            request=req,
        )
        try:
            snapshot = await self._run_activity(ExperimentActivities.apply_transition, inp)
        except ApplicationError as err:
            if err.type == "ApprovalRequired":
                self._approval_required(operation, req.via, req.actor_id, err)
            raise
        self._accept(operation, req.via, req.actor_id, before, snapshot, req.evidence)
        return snapshot

    def _approval_required(
        self, operation: str, via: str, actor_id: int | None, err: ApplicationError
    ) -> None:
        """Keep the change durably until it is approved, rejected, cancelled or expires."""
        info: dict[str, Any] = err.details[0] if err.details and isinstance(err.details[0], dict) else {}
        cr_id = info.get("change_request_id")
        if cr_id and not info.get("pending") and info.get("expires_at"):
            self._pending[cr_id] = PendingChange.model_validate(
                {"change_request_id": cr_id, "operation": operation, "expires_at": info["expires_at"],
                 "requested_by": actor_id}
            )  # fmt: skip
            self._wake = True
        self._note(operation, "approval_required", via, actor_id, f"change request {cr_id}")

    async def _run_activity(self, method: Any, inp: Any) -> ExperimentSnapshot:
        try:
            result: ExperimentSnapshot = await workflow.execute_local_activity_method(
                method,
                inp,
                start_to_close_timeout=support.LIFECYCLE_ACTIVITY_TIMEOUT,
                retry_policy=support.LIFECYCLE_RETRY,
            )
            return result
        except ActivityError as err:
            truth = support.truth_from_failure(err)
            if truth is not None:
                self._adopt(truth)  # the database disagreed with our cache
            raise support.from_activity_error(err) from None

    def _adopt(self, truth: Truth) -> None:
        """Take the database's state, and record operations it applied that we never saw.

        That happens when the server discards the workflow task that ran a local activity
        (it aborts in-flight updates under contention): the write committed, the history lost
        it. Recording it here keeps history, state and row in agreement, and a retried update
        id then returns its first result.
        """
        workflow_id = workflow.info().workflow_id
        for record in truth.applied:
            update_id = operation_ids.update_id_of(workflow_id, record.op_id)
            if update_id is None or update_id in self._results:
                continue
            self._results[update_id] = record.result
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
        self._snapshot = truth.snapshot
        self._publish(truth.snapshot)

    # ---- history and visibility -----------------------------------------------------------

    def _accept(
        self,
        operation: str,
        via: str,
        actor_id: int | None,
        before: ExperimentSnapshot | None,
        snapshot: ExperimentSnapshot,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._remember(
            HistoryEntry(
                operation=operation,
                outcome="accepted",
                via=via,  # type: ignore[arg-type]
                actor_id=actor_id,
                at=workflow.now(),
                from_status=before.status if before else None,
                to_status=snapshot.status,
                update_id=self._update_id(),
                version=snapshot.version,
                evidence=evidence,
            )
        )
        update_id = self._update_id()
        if update_id is not None:
            self._results[update_id] = snapshot
        self._publish(snapshot)
        self._queue_recalculation(before, snapshot)
        self._wake = True

    def _queue_recalculation(self, before: ExperimentSnapshot | None, after: ExperimentSnapshot) -> None:
        """Launch and end refresh the results; the run loop starts it, so no caller waits for it.

        An experiment without metrics has nothing to refresh: no recalculation workflow for it
        (before this patch one was started, and finished at once)."""
        if before is None:
            return
        if after.has_metrics is False and workflow.patched(SKIP_RECALCULATION_WITHOUT_METRICS):
            return
        if before.start_date is None and after.start_date is not None:
            self._recalculations.append("experiment_launch")
        elif before.end_date is None and after.end_date is not None and after.start_date is not None:
            self._recalculations.append("experiment_stop")

    def _note(
        self,
        operation: str,
        outcome: str,
        via: str,
        actor_id: int | None,
        detail: str,
        evidence: dict[str, Any] | None = None,
    ) -> HistoryEntry:
        snapshot = self._snapshot
        entry = HistoryEntry(
            operation=operation,
            outcome=outcome,  # type: ignore[arg-type]
            via=via,  # type: ignore[arg-type]
            actor_id=actor_id,
            at=workflow.now(),
            from_status=snapshot.status if snapshot else None,
            to_status=snapshot.status if snapshot else None,
            detail=detail,
            evidence=evidence,
        )
        self._remember(entry)
        return entry

    async def _record(self, entry: HistoryEntry) -> None:
        """Audit in SQL what only the workflow saw (signals and timers have no caller)."""
        await workflow.execute_local_activity_method(
            ExperimentActivities.record_history,
            RecordInput(project_id=self._project_id, experiment_id=self._experiment_id, entry=entry),
            start_to_close_timeout=support.LIFECYCLE_ACTIVITY_TIMEOUT,
            retry_policy=support.LIFECYCLE_RETRY,
        )

    def _publish(self, snapshot: ExperimentSnapshot) -> None:
        support.upsert_state(snapshot, self._published)
        self._published = support.published_fields(snapshot)
        # The Temporal UI shows these details on the workflow page (no history event).
        workflow.set_current_details(support.current_details(snapshot))

    def _insert_in_order(self, entry: HistoryEntry) -> None:
        """Place a recovered transition where its row version says it happened."""
        position = len(self._history)
        while position > 0:
            previous = self._history[position - 1].version
            if previous is None or entry.version is None or previous < entry.version:
                break
            position -= 1
        self._history.insert(position, entry)
        del self._history[:-HISTORY_LIMIT]

    def _remember(self, entry: HistoryEntry) -> None:
        self._history.append(entry)
        del self._history[:-HISTORY_LIMIT]

    # ---- ids ------------------------------------------------------------------------------

    def _require_snapshot(self) -> ExperimentSnapshot:
        if self._snapshot is None:
            raise support.not_found()
        return self._snapshot

    def _cached(self) -> ExperimentSnapshot | None:
        """A retried update id (Idempotency-Key) gets its first result, across continue-as-new."""
        update_id = self._update_id()
        return self._results.get(update_id) if update_id else None

    @staticmethod
    def _update_id() -> str | None:
        info = workflow.current_update_info()
        return info.id if info else None

    def _op_id(self, operation: str) -> str:
        update_id = self._update_id()
        if update_id is not None:
            return operation_ids.update_operation_id(workflow.info().workflow_id, update_id)
        version = self._snapshot.version if self._snapshot else 0
        return operation_ids.event_operation_id(workflow.info().workflow_id, version, operation, None)
