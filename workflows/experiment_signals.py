"""Signal handlers of the experiment workflow: lifecycle operations for operators (Temporal UI,
`temporal workflow signal`) and approval decisions from the API or external approval systems.

Signals have no caller to answer, so an invalid one is recorded in the history (and the SQL
audit trail) and ignored; it never fails the workflow.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from activities.approvals import ApplyChangeInput, ApprovalActivities, ExpireChangeInput
from domain import operation_ids
from domain.experiment_messages import ApprovalGranted, ChangeRequestClosed, TransitionRequest
from domain.lifecycle import Operation
from workflows import experiment_support as support
from workflows.experiment_core import ExperimentCore


class ExperimentSignals(ExperimentCore):
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

    async def _signal(self, operation: Operation, req: TransitionRequest | None) -> None:
        req = (req or TransitionRequest()).model_copy(update={"via": "signal"})
        async with self._lock:
            version = self._snapshot.version if self._snapshot else 0
            op_id = operation_ids.event_operation_id(
                workflow.info().workflow_id, version, operation, "signal"
            )
            try:
                await self._apply(operation, req, op_id)
            except ApplicationError as err:
                if err.type != "ApprovalRequired":
                    await self._record(self._note(operation, "rejected", req.via, req.actor_id, err.message))

    # ---- approvals ------------------------------------------------------------------------

    @workflow.signal(name="approval_granted")
    async def approval_granted(self, msg: ApprovalGranted) -> None:
        """Apply exactly the approved change, once, by ourselves (no caller is waiting)."""
        async with self._lock:
            pending = self._pending.get(msg.change_request_id)
            operation = pending.operation if pending else "approval"
            before = self._snapshot
            try:
                snapshot = await self._run_activity(
                    ApprovalActivities.apply_change_request,
                    ApplyChangeInput(
                        change_request_id=msg.change_request_id,
                        project_id=self._project_id,
                        experiment_id=self._experiment_id,
                        approver_id=msg.approver_id,
                        source=msg.source,
                        now=workflow.now(),
                    ),
                )
            except ApplicationError as err:
                self._pending.pop(msg.change_request_id, None)
                await self._record(self._note(operation, "failed", "approval", msg.approver_id, err.message))
                return
            self._pending.pop(msg.change_request_id, None)
            self._accept(operation, "approval", msg.approver_id, before, snapshot)

    @workflow.signal(name="change_request_closed")
    async def change_request_closed(self, msg: ChangeRequestClosed) -> None:
        pending = self._pending.pop(msg.change_request_id, None)
        if pending is not None:
            self._wake = True
            detail = f"change request {msg.change_request_id} {msg.state}"
            await self._record(self._note(pending.operation, "rejected", "approval", msg.actor_id, detail))

    async def _expire_due(self, due: datetime) -> None:
        """Durable expiry: drop every pending change whose deadline has passed."""
        now = workflow.now()
        for cr_id, pending in list(self._pending.items()):
            if pending.expires_at > due:
                continue
            async with self._lock:
                state = await workflow.execute_local_activity_method(
                    ApprovalActivities.expire_change_request,
                    ExpireChangeInput(change_request_id=cr_id, now=max(now, due)),
                    start_to_close_timeout=support.LIFECYCLE_ACTIVITY_TIMEOUT,
                    retry_policy=support.LIFECYCLE_RETRY,
                )
                self._pending.pop(cr_id, None)
                if state == "expired":
                    detail = f"change request {cr_id} expired"
                    await self._record(self._note(pending.operation, "rejected", "timer", None, detail))
