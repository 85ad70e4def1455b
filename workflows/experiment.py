"""ExperimentWorkflow: one long-lived workflow per experiment, the single writer of its lifecycle.

Updates (REST) and signals (operators, external systems) of the same names drive transitions.
Validators are one call into `domain.lifecycle`; handlers run one short local activity that writes
the row and the flag in one transaction, and the row's check in that activity is the only other
one. The state and its pure transitions live in `domain.experiment_state.ExperimentState`; this
class holds one and keeps to Temporal: handlers, activities, timers, visibility. A busy flag
rejects concurrent transitions fast (409) and a lock serializes what gets through (temporal-notes
§1.2). Changes that need approval wait here, durably, until approved, dropped or expired. The
scheduled launch/end, the expiry of pending changes and the autopilot's evaluations share one
updatable timer. The workflow completes only when the experiment is soft-deleted; it
continues-as-new when Temporal suggests it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.exceptions import ActivityError, ApplicationError

    from activities.approvals import ApplyChangeInput, ApprovalActivities, ExpireChangeInput
    from activities.autopilot import Evaluation
    from activities.experiments import CreateInput, ExperimentActivities, UpdateInput
    from domain import operation_ids
    from domain.autopilot.decide import Decision
    from domain.errors import Conflict, DomainError, Unavailable
    from domain.experiment_messages import (
        ApprovalGranted,
        ChangeRequestClosed,
        CreateRequest,
        EvaluateRequest,
        ExperimentSnapshot,
        HistoryEntry,
        PendingChange,
        TransitionRequest,
        Truth,
        UpdateRequest,
        WorkflowInput,
    )
    from domain.experiment_state import ExperimentState, recalculation_reason
    from domain.lifecycle import Operation, check
    from domain.scheduling import ScheduledAction
    from workflows import experiment_autopilot as autopilot
    from workflows import experiment_support as support
    from workflows.patches import (
        ACTIVITY_CHECKS_THE_ROW,
        RECALCULATE_ON_LAUNCH_AND_END,
        RECHECK_RESULT_UNDER_LOCK,
        SKIP_RECALCULATION_WITHOUT_METRICS,
    )
    from workflows.timeseries import start_recalculation_child


@workflow.defn(name="experiment")
class ExperimentWorkflow:
    @workflow.init
    def __init__(self, inp: WorkflowInput) -> None:
        self._state = ExperimentState.from_input(inp)
        self._busy = False
        self._wake = False  # a handler changed what the run loop waits for
        self._lock = asyncio.Lock()
        # What visibility shows now; the start carried status and flag key but never the name.
        self._published: support.Published | None = None

    # ---- run loop -------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: WorkflowInput) -> ExperimentSnapshot | None:
        while True:
            await self._sleep_until_woken()
            await self._start_recalculations()
            if self._state.finished or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._state.finished:
                    return self._state.snapshot
                workflow.continue_as_new(self._state.carry_over())

    async def _sleep_until_woken(self) -> None:
        """Wait for a handler to change something, or for the next deadline (updatable timer).

        With nothing scheduled no timer is created at all, so histories recorded before
        deadlines existed replay unchanged.
        """
        self._wake = False
        deadline = self._state.next_deadline()
        if deadline is None:
            await workflow.wait_condition(self._should_wake)
            return
        remaining = (deadline - workflow.now()).total_seconds()
        # Sub-millisecond waits are not real timers (a zero timeout raises at once, notes §4.3).
        if remaining > 0.001:
            try:
                await workflow.wait_condition(
                    self._should_wake, timeout=remaining, timeout_summary="next deadline"
                )
                return
            except TimeoutError:
                pass
        # The timer fired: everything due by `deadline` is due now, even if workflow time is a
        # hair earlier (timers round), or the loop would spin without ever yielding.
        due = max(deadline, workflow.now())
        await self._expire_due(due)
        await self._fire_due(due)
        at = self._state.evaluation_due()
        if at is not None and at <= due:
            await self._evaluate()

    async def _start_recalculations(self) -> None:
        while self._state.recalculations:
            reason = self._state.recalculations.pop(0)
            # Histories recorded before results existed never started these children.
            if workflow.patched(RECALCULATE_ON_LAUNCH_AND_END):
                await start_recalculation_child(self._state.project_id, self._state.experiment_id, reason)

    def _should_wake(self) -> bool:
        return self._wake or self._state.finished or workflow.info().is_continue_as_new_suggested()

    # ---- queries --------------------------------------------------------------------------

    @workflow.query(name="state")
    def state(self) -> ExperimentSnapshot | None:
        return self._state.snapshot

    @workflow.query(name="history")
    def history(self) -> list[HistoryEntry]:
        return list(self._state.history)

    @workflow.query(name="pending_changes")
    def pending_changes(self) -> list[PendingChange]:
        return list(self._state.pending.values())

    # ---- create and PATCH -----------------------------------------------------------------

    @workflow.update(name="create")
    async def create(self, req: CreateRequest) -> ExperimentSnapshot:
        if self._state.snapshot is not None:
            return self._state.snapshot  # a retried create: the experiment exists already
        self._busy = True
        try:
            snapshot = await workflow.execute_local_activity_method(
                ExperimentActivities.create_experiment,
                CreateInput(op_id=self._op_id("create"), now=workflow.now(), request=req),
                start_to_close_timeout=support.LIFECYCLE_ACTIVITY_TIMEOUT,
                retry_policy=support.LIFECYCLE_RETRY,
            )
        except ActivityError as err:
            self._state.abandoned = True  # nothing was created: this run has nothing to look after
            raise support.from_activity_error(err) from None
        finally:
            self._busy = False
        self._accept("create", "rest", req.actor_id, None, snapshot)
        return snapshot

    @create.validator
    def _validate_create(self, req: CreateRequest) -> None:
        if self._state.snapshot is not None:
            return  # a retried create answers with the experiment, whenever it arrives
        support.check_deadline(req.apply_by)
        if self._busy:
            raise support.busy()

    @workflow.update(name="update")
    async def update(self, req: UpdateRequest) -> ExperimentSnapshot:
        cached = self._cached()
        if cached is not None:
            return cached
        self._busy = True
        try:
            async with self._lock:
                cached = self._adopted_meanwhile()
                if cached is not None:
                    return cached
                self._check_update(req)
                before = self._require_snapshot()
                operation = _update_operation(req)
                try:
                    snapshot = await self._run_activity(
                        ExperimentActivities.apply_update,
                        UpdateInput(
                            op_id=self._op_id("update"),
                            project_id=self._state.project_id,
                            experiment_id=self._state.experiment_id,
                            now=workflow.now(),
                            request=req,
                        ),
                    )
                except ApplicationError as err:
                    if err.type == "ApprovalRequired":  # a PATCH that changes the flag, gated
                        self._approval_required(operation, "rest", req.actor_id, err)
                    raise
                self._accept(operation, "rest", req.actor_id, before, snapshot)
                return snapshot
        finally:
            self._busy = False

    @update.validator
    def _validate_update(self, req: UpdateRequest) -> None:
        if self._cached() is not None:
            return
        support.check_deadline(req.apply_by)
        if self._busy:
            raise support.busy()
        self._check_update(req)

    def _check_update(self, req: UpdateRequest) -> None:
        snapshot = self._state.snapshot
        restoring = req.changes.get("deleted") is False
        if snapshot is None or (snapshot.deleted and not restoring):
            raise support.not_found()
        current = snapshot.newest(req.observed).status
        if _stored(current.value) != _stored(req.assumed_status.value):
            raise support.rejection(
                Conflict("The experiment changed while this request was processed. Retry the request.")
            )

    @workflow.update(name="resync")
    async def resync(self) -> ExperimentSnapshot:
        """Reload state from the database (the API calls it when it finds an applied operation
        whose update the workflow does not know)."""
        async with self._lock:
            truth = await support.load_truth(self._state.experiment_id)
            self._adopt(truth)
            return truth.snapshot

    # ---- lifecycle updates (the REST actions) and signals (operators) ----------------------

    @workflow.update(name="launch")
    async def launch(self, req: TransitionRequest) -> ExperimentSnapshot:
        return await self._transition("launch", req)

    @launch.validator
    def _validate_launch(self, req: TransitionRequest) -> None:
        self._validate("launch", req)

    @workflow.update(name="pause")
    async def pause(self, req: TransitionRequest) -> ExperimentSnapshot:
        return await self._transition("pause", req)

    @pause.validator
    def _validate_pause(self, req: TransitionRequest) -> None:
        self._validate("pause", req)

    @workflow.update(name="resume")
    async def resume(self, req: TransitionRequest) -> ExperimentSnapshot:
        return await self._transition("resume", req)

    @resume.validator
    def _validate_resume(self, req: TransitionRequest) -> None:
        self._validate("resume", req)

    @workflow.update(name="end")
    async def end(self, req: TransitionRequest) -> ExperimentSnapshot:
        return await self._transition("end", req)

    @end.validator
    def _validate_end(self, req: TransitionRequest) -> None:
        self._validate("end", req)

    @workflow.update(name="reset")
    async def reset(self, req: TransitionRequest) -> ExperimentSnapshot:
        return await self._transition("reset", req)

    @reset.validator
    def _validate_reset(self, req: TransitionRequest) -> None:
        self._validate("reset", req)

    @workflow.update(name="archive")
    async def archive(self, req: TransitionRequest) -> ExperimentSnapshot:
        return await self._transition("archive", req)

    @archive.validator
    def _validate_archive(self, req: TransitionRequest) -> None:
        self._validate("archive", req)

    @workflow.update(name="unarchive")
    async def unarchive(self, req: TransitionRequest) -> ExperimentSnapshot:
        return await self._transition("unarchive", req)

    @unarchive.validator
    def _validate_unarchive(self, req: TransitionRequest) -> None:
        self._validate("unarchive", req)

    @workflow.update(name="ship_variant")
    async def ship_variant(self, req: TransitionRequest) -> ExperimentSnapshot:
        return await self._transition("ship_variant", req)

    @ship_variant.validator
    def _validate_ship_variant(self, req: TransitionRequest) -> None:
        self._validate("ship_variant", req)

    # Signals have no caller to answer: an invalid one is recorded in the history (and the SQL
    # audit trail) and ignored; it never fails the workflow.

    @workflow.signal(name="launch")
    async def launch_signal(self, req: TransitionRequest | None = None) -> None:
        await self._signal("launch", req)

    @workflow.signal(name="pause")
    async def pause_signal(self, req: TransitionRequest | None = None) -> None:
        await self._signal("pause", req)

    @workflow.signal(name="resume")
    async def resume_signal(self, req: TransitionRequest | None = None) -> None:
        await self._signal("resume", req)

    @workflow.signal(name="end")
    async def end_signal(self, req: TransitionRequest | None = None) -> None:
        await self._signal("end", req)

    @workflow.signal(name="reset")
    async def reset_signal(self, req: TransitionRequest | None = None) -> None:
        await self._signal("reset", req)

    @workflow.signal(name="archive")
    async def archive_signal(self, req: TransitionRequest | None = None) -> None:
        await self._signal("archive", req)

    @workflow.signal(name="unarchive")
    async def unarchive_signal(self, req: TransitionRequest | None = None) -> None:
        await self._signal("unarchive", req)

    @workflow.signal(name="ship_variant")
    async def ship_variant_signal(self, req: TransitionRequest | None = None) -> None:
        await self._signal("ship_variant", req)

    # ---- approvals ------------------------------------------------------------------------

    @workflow.signal(name="approval_granted")
    async def approval_granted(self, msg: ApprovalGranted) -> None:
        """Apply exactly the approved change, once, by ourselves (no caller is waiting)."""
        async with self._lock:
            pending = self._state.pending.get(msg.change_request_id)
            operation = pending.operation if pending else "approval"
            before = self._state.snapshot
            try:
                snapshot = await self._run_activity(
                    ApprovalActivities.apply_change_request,
                    ApplyChangeInput(
                        change_request_id=msg.change_request_id,
                        project_id=self._state.project_id,
                        experiment_id=self._state.experiment_id,
                        approver_id=msg.approver_id,
                        source=msg.source,
                        now=workflow.now(),
                    ),
                )
            except ApplicationError as err:
                self._state.pending.pop(msg.change_request_id, None)
                await self._record(self._note(operation, "failed", "approval", msg.approver_id, err.message))
                return
            self._state.pending.pop(msg.change_request_id, None)
            self._accept(operation, "approval", msg.approver_id, before, snapshot)

    @workflow.signal(name="change_request_closed")
    async def change_request_closed(self, msg: ChangeRequestClosed) -> None:
        pending = self._state.pending.pop(msg.change_request_id, None)
        if pending is not None:
            self._wake = True
            detail = f"change request {msg.change_request_id} {msg.state}"
            await self._record(self._note(pending.operation, "rejected", "approval", msg.actor_id, detail))

    # ---- autopilot (workflows/experiment_autopilot.py) ------------------------------------

    @workflow.update(name="evaluate_rules")
    async def evaluate_rules(self, req: EvaluateRequest) -> Decision:
        """Evaluate the autopilot rules now and act exactly as the timer would."""
        self._busy = True
        try:
            decision = await self._evaluate(strict=True)
        finally:
            self._busy = False
        if decision is None:  # no rules, or not running (any more): nothing was evaluated
            summary = "not evaluated: the experiment has no autopilot rules or is not running"
            return Decision(summary=summary, evaluated_at=workflow.now())
        return decision

    @evaluate_rules.validator
    def _validate_evaluate_rules(self, req: EvaluateRequest) -> None:
        support.check_deadline(req.apply_by)
        if self._state.live is None:
            raise support.not_found()
        if self._busy:
            raise support.busy()

    @workflow.signal(name="evaluate_rules")
    async def evaluate_rules_signal(self) -> None:
        await self._evaluate()

    async def _evaluate(self, *, strict: bool = False) -> Decision | None:
        """Evaluate now and act on the decision; returns it (None: no rules, or not running).
        `strict`: a failed evaluation raises (a caller waits), else it is recorded and retried later."""
        async with self._lock:
            try:
                evaluation: Evaluation = await autopilot.evaluate(self._state)
            except ActivityError as err:
                self._state.evaluation_failed_at = workflow.now()
                detail = f"the autopilot could not evaluate its rules: {err.cause or err}"
                await self._record(self._note("evaluate_rules", "failed", "autopilot", None, detail))
                if strict:
                    raise support.rejection(Unavailable(detail[:500])) from None
                return None
            self._state.evaluation_failed_at = None
            self._state.snapshot = evaluation.snapshot
            self._publish(evaluation.snapshot)
            decision = evaluation.decision
            if decision is not None and decision.acts:
                await self._act(decision)
            self._wake = True
            return decision

    async def _act(self, decision: Decision) -> None:
        """Apply a decision through the same path as REST (the approval gate included), keyed by
        the row version it was judged on: at most once, and not at all if the row moved on."""
        evidence = decision.model_dump(mode="json")
        operation = autopilot.OPERATIONS.get(decision.action)
        if decision.mode == "shadow" or operation is None:
            outcome = "shadow" if decision.mode == "shadow" else "notified"
            entry = self._note(
                operation or decision.action, outcome, "autopilot", None, decision.summary, evidence
            )
            await self._record(entry)
            await autopilot.notify(self._state, decision, outcome, f"{decision.action}:{outcome}")
            return
        op_id = operation_ids.event_operation_id(
            workflow.info().workflow_id, decision.judged_version, operation, "autopilot"
        )
        try:
            await self._apply(operation, autopilot.transition_request(decision), op_id)
        except ApplicationError as err:
            outcome = "approval_required" if err.type == "ApprovalRequired" else "rejected"
            if outcome == "rejected":
                await self._record(
                    self._note(operation, "rejected", "autopilot", None, err.message, evidence)
                )
            await autopilot.notify(self._state, decision, outcome, op_id, err.message)
            return
        await autopilot.notify(self._state, decision, "applied", op_id)

    # ---- deadlines: scheduled actions and pending changes ---------------------------------

    async def _fire_due(self, due: datetime) -> None:
        async with self._lock:
            scheduled = self._state.scheduled()
            if scheduled is None or scheduled.at > due or self._state.holds_back(scheduled):
                return
            snapshot = self._require_snapshot()
            config = snapshot.scheduling_config or {}
            req = TransitionRequest(
                via="timer",
                variant_key=scheduled.variant_key,
                conclusion=config.get("end_conclusion"),
                conclusion_comment=config.get("end_conclusion_comment"),
                conclusion_provided=scheduled.action == "end",
            )
            op_id = operation_ids.event_operation_id(
                workflow.info().workflow_id, snapshot.version, scheduled.operation, "timer"
            )
            try:
                await self._apply(scheduled.operation, req, op_id)
            except ApplicationError as err:
                state = "approval_required" if err.type == "ApprovalRequired" else "failed"
                try:
                    await self._mark(scheduled, state, err.message)
                except ActivityError:
                    self._state.gave_up.add(scheduled)  # the database is unreachable: do not spin on it
                if state == "failed":
                    await self._record(self._note(scheduled.operation, "failed", "timer", None, err.message))

    async def _mark(self, scheduled: ScheduledAction, state: str, detail: str) -> None:
        snapshot = await support.mark_schedule(self._state.experiment_id, scheduled, state, detail)
        self._state.snapshot = snapshot
        self._publish(snapshot)

    async def _expire_due(self, due: datetime) -> None:
        """Durable expiry: drop every pending change whose deadline has passed."""
        now = workflow.now()
        for pending in self._state.expired(due):
            cr_id = pending.change_request_id
            async with self._lock:
                state = await workflow.execute_local_activity_method(
                    ApprovalActivities.expire_change_request,
                    ExpireChangeInput(change_request_id=cr_id, now=max(now, due)),
                    start_to_close_timeout=support.LIFECYCLE_ACTIVITY_TIMEOUT,
                    retry_policy=support.LIFECYCLE_RETRY,
                )
                self._state.pending.pop(cr_id, None)
                if state == "expired":
                    detail = f"change request {cr_id} expired"
                    await self._record(self._note(pending.operation, "rejected", "timer", None, detail))

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
        snapshot = self._state.live
        if snapshot is None:
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
                cached = self._adopted_meanwhile()
                if cached is not None:
                    return cached
                return await self._apply(operation, req, self._op_id(operation))
        finally:
            self._busy = False

    async def _signal(self, operation: Operation, req: TransitionRequest | None) -> None:
        req = (req or TransitionRequest()).model_copy(update={"via": "signal"})
        async with self._lock:
            version = self._state.snapshot.version if self._state.snapshot else 0
            op_id = operation_ids.event_operation_id(
                workflow.info().workflow_id, version, operation, "signal"
            )
            try:
                await self._apply(operation, req, op_id)
            except ApplicationError as err:
                if err.type != "ApprovalRequired":
                    await self._record(self._note(operation, "rejected", req.via, req.actor_id, err.message))

    async def _apply(self, operation: Operation, req: TransitionRequest, op_id: str) -> ExperimentSnapshot:
        """Write through the activity (which checks the row: the one check besides the update
        validator's), record the transition."""
        before = self._require_snapshot()
        self._state.snapshot = before.newest(req.observed)
        if not workflow.patched(ACTIVITY_CHECKS_THE_ROW):
            self._check(operation, req)  # histories recorded before it checked here a second time
        inp = support.activity_input(self._state, op_id, operation, req)
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
        if self._state.await_approval(operation, actor_id, info):
            self._wake = True
        self._note(
            operation, "approval_required", via, actor_id, f"change request {info.get('change_request_id')}"
        )

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
        self._state.adopt(truth, workflow.info().workflow_id)
        self._publish(truth.snapshot)

    def _accept(
        self,
        operation: str,
        via: str,
        actor_id: int | None,
        before: ExperimentSnapshot | None,
        snapshot: ExperimentSnapshot,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        self._state.accept(
            operation=operation,
            via=via,
            actor_id=actor_id,
            before=before,
            snapshot=snapshot,
            at=workflow.now(),
            update_id=self._update_id(),
            evidence=evidence,
        )
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
        reason = recalculation_reason(before, after)
        if reason is not None:
            self._state.recalculations.append(reason)

    # ---- history and visibility -----------------------------------------------------------

    def _note(
        self,
        operation: str,
        outcome: str,
        via: str,
        actor_id: int | None,
        detail: str,
        evidence: dict[str, Any] | None = None,
    ) -> HistoryEntry:
        return self._state.note(
            operation=operation,
            outcome=outcome,
            via=via,
            actor_id=actor_id,
            detail=detail,
            at=workflow.now(),
            evidence=evidence,
        )

    async def _record(self, entry: HistoryEntry) -> None:
        await support.record_history(self._state, entry)

    def _publish(self, snapshot: ExperimentSnapshot) -> None:
        support.upsert_state(snapshot, self._published)
        self._published = support.published_fields(snapshot)
        # The Temporal UI shows these details on the workflow page (no history event).
        workflow.set_current_details(support.current_details(snapshot))

    # ---- ids ------------------------------------------------------------------------------

    def _require_snapshot(self) -> ExperimentSnapshot:
        if self._state.snapshot is None:
            raise support.not_found()
        return self._state.snapshot

    def _cached(self) -> ExperimentSnapshot | None:
        return self._state.cached(self._update_id())

    def _adopted_meanwhile(self) -> ExperimentSnapshot | None:
        """This update's result, if another handler adopted it from the database while this one
        waited for the lock (histories recorded before the patch ran the activity again)."""
        cached = self._cached()
        if cached is not None and workflow.patched(RECHECK_RESULT_UNDER_LOCK):
            return cached
        return None

    @staticmethod
    def _update_id() -> str | None:
        info = workflow.current_update_info()
        return info.id if info else None

    def _op_id(self, operation: str) -> str:
        update_id = self._update_id()
        if update_id is not None:
            return operation_ids.update_operation_id(workflow.info().workflow_id, update_id)
        version = self._state.snapshot.version if self._state.snapshot else 0
        return operation_ids.event_operation_id(workflow.info().workflow_id, version, operation, None)


def _stored(status: str) -> str:
    return "running" if status == "paused" else status


def _update_operation(req: UpdateRequest) -> str:
    deleted = req.changes.get("deleted")
    return (
        {True: "delete", False: "restore"}.get(deleted, "update") if isinstance(deleted, bool) else "update"
    )
