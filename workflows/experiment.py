"""ExperimentWorkflow: one long-lived workflow per experiment, the single writer of its lifecycle.

Updates (REST) and signals (operators, external systems) of the same names drive transitions.
Validators are one call into `domain.lifecycle`; handlers run one short local activity that
writes the row and the flag in one transaction. A busy flag rejects concurrent transitions fast
(409) and a lock with a re-check is the safety net (temporal-notes §1.2). The workflow completes
only when the experiment is soft-deleted; it continues-as-new when Temporal suggests it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.experiments import CreateInput, ExperimentActivities, UpdateInput
    from domain.errors import DomainError
    from domain.experiment_checks import check_launchable
    from domain.experiment_messages import (
        ActivityInput,
        CreateRequest,
        ExperimentSnapshot,
        HistoryEntry,
        RecordInput,
        TransitionRequest,
        Truth,
        TruthInput,
        UpdateRequest,
        WorkflowInput,
    )
    from domain.lifecycle import Operation, check_transition
    from workflows import experiment_support as support
    from workflows.constants import update_operation_id

HISTORY_LIMIT = 1000
RESULTS_LIMIT = 200


@workflow.defn(name="experiment")
class ExperimentWorkflow:
    @workflow.init
    def __init__(self, inp: WorkflowInput) -> None:
        self._project_id = inp.project_id
        self._experiment_id = inp.experiment_id
        self._snapshot: ExperimentSnapshot | None = inp.snapshot
        self._history: list[HistoryEntry] = list(inp.history)
        self._results: dict[str, ExperimentSnapshot] = dict(inp.results)
        self._busy = False
        self._lock = asyncio.Lock()
        self._abandoned = False
        # What visibility shows now; the start carried status and flag key but never the name.
        self._published: tuple[str, str | None, str] | None = None

    # ---- run loop -------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: WorkflowInput) -> ExperimentSnapshot | None:
        while True:
            await workflow.wait_condition(
                lambda: self._finished or workflow.info().is_continue_as_new_suggested()
            )
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._finished:
                return self._snapshot
            workflow.continue_as_new(self._carry_over())

    @property
    def _finished(self) -> bool:
        return self._abandoned or (self._snapshot is not None and self._snapshot.deleted)

    def _carry_over(self) -> WorkflowInput:
        recent = dict(list(self._results.items())[-RESULTS_LIMIT:])
        return WorkflowInput(
            project_id=self._project_id,
            experiment_id=self._experiment_id,
            snapshot=self._snapshot,
            history=self._history[-HISTORY_LIMIT:],
            results=recent,
        )

    # ---- queries --------------------------------------------------------------------------

    @workflow.query(name="state")
    def state(self) -> ExperimentSnapshot | None:
        return self._snapshot

    @workflow.query(name="history")
    def history(self) -> list[HistoryEntry]:
        return list(self._history)

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
                operation = _update_operation(req)
                self._accept(operation, "rest", req.actor_id, before, snapshot)
                return snapshot
        finally:
            self._busy = False

    @update.validator
    def _validate_update(self, req: UpdateRequest) -> None:
        if self._cached() is not None:
            return
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
            raise ApplicationError(
                "The experiment changed while this request was processed. Retry the request.",
                {"attr": None, "code": "conflict"},
                type="Conflict",
            )

    # ---- lifecycle updates ----------------------------------------------------------------

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

    # ---- the same operations as signals (operators, `temporal workflow signal`) -------------

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

    # ---- shared machinery -----------------------------------------------------------------

    def _validate(self, operation: Operation, req: TransitionRequest) -> None:
        """Sync and side-effect free: a rejection here writes nothing to history."""
        if self._cached() is not None:
            return
        if self._busy:
            raise support.busy()
        self._check(operation, req)

    def _check(self, operation: Operation, req: TransitionRequest) -> None:
        snapshot = self._snapshot
        if snapshot is None or snapshot.deleted:
            raise support.not_found()
        current = snapshot.newest(req.observed)
        try:
            check_transition(operation, current.facts())
            if operation == "launch":
                check_launchable(current.flag_variant_keys)
        except DomainError as err:
            raise support.rejection(err) from None

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
        """Re-check under the lock, write through the activity, record the transition."""
        before = self._require_snapshot()
        self._snapshot = before.newest(req.observed)
        self._check(operation, req)
        inp = ActivityInput(
            op_id=op_id,
            operation=operation,
            project_id=self._project_id,
            experiment_id=self._experiment_id,
            now=workflow.now(),
            request=req,
        )
        snapshot = await self._run_activity(ExperimentActivities.apply_transition, inp)
        self._accept(operation, req.via, req.actor_id, before, snapshot)
        return snapshot

    async def _signal(self, operation: Operation, req: TransitionRequest | None) -> None:
        """Signals have no caller to answer: an invalid one is recorded and ignored."""
        req = (req or TransitionRequest()).model_copy(update={"via": "signal"})
        async with self._lock:
            version = self._snapshot.version if self._snapshot else 0
            op_id = f"{workflow.info().workflow_id}:{version}:{operation}:signal"
            try:
                await self._apply(operation, req, op_id)
            except ApplicationError as err:
                await self._record_rejection(operation, req, err.message)

    async def _record_rejection(self, operation: str, req: TransitionRequest, detail: str) -> None:
        snapshot = self._snapshot
        entry = HistoryEntry(
            operation=operation,
            outcome="rejected",
            via=req.via,
            actor_id=req.actor_id,
            at=workflow.now(),
            from_status=snapshot.status if snapshot else None,
            to_status=snapshot.status if snapshot else None,
            detail=detail,
        )
        self._remember(entry)
        await workflow.execute_local_activity_method(
            ExperimentActivities.record_history,
            RecordInput(project_id=self._project_id, experiment_id=self._experiment_id, entry=entry),
            start_to_close_timeout=support.LIFECYCLE_ACTIVITY_TIMEOUT,
            retry_policy=support.LIFECYCLE_RETRY,
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
        """Take the database's state, and record operations it applied that we never saw.

        That happens when the server discards the workflow task that ran a local activity
        (it aborts in-flight updates under contention): the write committed, the history lost
        it. Recording it here keeps history, state and row in agreement, and a retried update
        id then returns its first result.
        """
        prefix = update_operation_id(workflow.info().workflow_id, "")
        for record in truth.applied:
            update_id = record.op_id.removeprefix(prefix) if record.op_id.startswith(prefix) else None
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

    @workflow.update(name="resync")
    async def resync(self) -> ExperimentSnapshot:
        """Reload state from the database (the API calls it when it finds an applied operation
        whose update the workflow does not know)."""
        async with self._lock:
            truth = await workflow.execute_local_activity_method(
                ExperimentActivities.load_truth,
                TruthInput(experiment_id=self._experiment_id),
                start_to_close_timeout=support.LIFECYCLE_ACTIVITY_TIMEOUT,
                retry_policy=support.LIFECYCLE_RETRY,
            )
            self._adopt(truth)
            return truth.snapshot

    def _accept(
        self,
        operation: str,
        via: str,
        actor_id: int | None,
        before: ExperimentSnapshot | None,
        snapshot: ExperimentSnapshot,
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
            )
        )
        update_id = self._update_id()
        if update_id is not None:
            self._results[update_id] = snapshot
        self._publish(snapshot)

    def _publish(self, snapshot: ExperimentSnapshot) -> None:
        support.upsert_state(snapshot, self._published)
        self._published = support.published_fields(snapshot)

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
            return update_operation_id(workflow.info().workflow_id, update_id)
        version = self._snapshot.version if self._snapshot else 0
        return f"{workflow.info().workflow_id}:{version}:{operation}"


def _stored(status: str) -> str:
    return "running" if status == "paused" else status


def _update_operation(req: UpdateRequest) -> str:
    deleted = req.changes.get("deleted")
    return (
        {True: "delete", False: "restore"}.get(deleted, "update") if isinstance(deleted, bool) else "update"
    )


__all__ = ["ExperimentWorkflow", "timedelta"]
