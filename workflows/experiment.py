"""ExperimentWorkflow: one long-lived workflow per experiment, the single writer of its lifecycle.

Updates (REST) and signals (operators, external systems; workflows/experiment_signals.py) of the
same names drive transitions. Validators are one call into `domain.lifecycle`; handlers run one
short local activity that writes the row and the flag in one transaction. A busy flag rejects
concurrent transitions fast (409) and a lock with a re-check is the safety net (temporal-notes
§1.2). Changes that need approval wait here, durably, until approved, dropped or expired. The
workflow completes only when the experiment is soft-deleted; it continues-as-new when Temporal
suggests it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.exceptions import ActivityError, ApplicationError

    from activities.approvals import ApprovalActivities  # noqa: F401  (registered with the worker)
    from activities.experiments import CreateInput, ExperimentActivities, UpdateInput
    from domain.autopilot.decide import Decision
    from domain.errors import Conflict
    from domain.experiment_messages import (
        CreateRequest,
        EvaluateRequest,
        ExperimentSnapshot,
        HistoryEntry,
        PendingChange,
        TransitionRequest,
        Truth,
        TruthInput,
        UpdateRequest,
        WorkflowInput,
    )
    from workflows import experiment_support as support
    from workflows.experiment_timers import ExperimentTimers
    from workflows.patches import RECALCULATE_ON_LAUNCH_AND_END
    from workflows.timeseries import start_recalculation_child


@workflow.defn(name="experiment")
class ExperimentWorkflow(ExperimentTimers):
    @workflow.init
    def __init__(self, inp: WorkflowInput) -> None:
        self._setup(inp)
        self._setup_timers()

    # ---- run loop -------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: WorkflowInput) -> ExperimentSnapshot | None:
        while True:
            await self._sleep_until_woken()
            await self._start_recalculations()
            if self._finished or workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._finished:
                    return self._snapshot
                workflow.continue_as_new(self._carry_over())

    async def _sleep_until_woken(self) -> None:
        """Wait for a handler to change something, or for the next deadline (updatable timer).

        With nothing scheduled no timer is created at all, so histories recorded before
        deadlines existed replay unchanged.
        """
        self._wake = False
        deadline = self._next_deadline()
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
        await self._on_deadline(deadline)

    async def _start_recalculations(self) -> None:
        while self._recalculations:
            reason = self._recalculations.pop(0)
            # Histories recorded before results existed never started these children.
            if workflow.patched(RECALCULATE_ON_LAUNCH_AND_END):
                await start_recalculation_child(self._project_id, self._experiment_id, reason)

    def _should_wake(self) -> bool:
        return self._wake or self._finished or workflow.info().is_continue_as_new_suggested()

    # ---- queries --------------------------------------------------------------------------

    @workflow.query(name="state")
    def state(self) -> ExperimentSnapshot | None:
        return self._snapshot

    @workflow.query(name="history")
    def history(self) -> list[HistoryEntry]:
        return list(self._history)

    @workflow.query(name="pending_changes")
    def pending_changes(self) -> list[PendingChange]:
        return list(self._pending.values())

    # ---- create and PATCH -----------------------------------------------------------------

    @workflow.update(name="create")
    async def create(self, req: CreateRequest) -> ExperimentSnapshot:
        if self._snapshot is not None:
            return self._snapshot  # a retried create: the experiment exists already
        self._busy = True
        try:
            snapshot = await workflow.execute_local_activity_method(
                ExperimentActivities.create_experiment,
                CreateInput(op_id=self._op_id("create"), now=workflow.now(), request=req),
                start_to_close_timeout=support.LIFECYCLE_ACTIVITY_TIMEOUT,
                retry_policy=support.LIFECYCLE_RETRY,
            )
        except ActivityError as err:
            self._abandoned = True  # nothing was created: this run has nothing to look after
            raise support.from_activity_error(err) from None
        finally:
            self._busy = False
        self._accept("create", "rest", req.actor_id, None, snapshot)
        return snapshot

    @create.validator
    def _validate_create(self, req: CreateRequest) -> None:
        if self._snapshot is not None:
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
                self._check_update(req)
                before = self._require_snapshot()
                operation = _update_operation(req)
                try:
                    snapshot = await self._run_activity(
                        ExperimentActivities.apply_update,
                        UpdateInput(
                            op_id=self._op_id("update"),
                            project_id=self._project_id,
                            experiment_id=self._experiment_id,
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
        snapshot = self._snapshot
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
            truth: Truth = await workflow.execute_local_activity_method(
                ExperimentActivities.load_truth,
                TruthInput(experiment_id=self._experiment_id),
                start_to_close_timeout=support.LIFECYCLE_ACTIVITY_TIMEOUT,
                retry_policy=support.LIFECYCLE_RETRY,
            )
            self._adopt(truth)
            return truth.snapshot

    # ---- lifecycle updates (the REST actions) ---------------------------------------------

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
        snapshot = self._snapshot
        if snapshot is None or snapshot.deleted:
            raise support.not_found()
        if self._busy:
            raise support.busy()

    @workflow.update(name="ship_variant")
    async def ship_variant(self, req: TransitionRequest) -> ExperimentSnapshot:
        return await self._transition("ship_variant", req)

    @ship_variant.validator
    def _validate_ship_variant(self, req: TransitionRequest) -> None:
        self._validate("ship_variant", req)


def _stored(status: str) -> str:
    return "running" if status == "paused" else status


def _update_operation(req: UpdateRequest) -> str:
    deleted = req.changes.get("deleted")
    return (
        {True: "delete", False: "restore"}.get(deleted, "update") if isinstance(deleted, bool) else "update"
    )
