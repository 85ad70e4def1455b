"""The experiment's durable timers: scheduled launch and end (scheduling_config), the expiry
of changes waiting for approval, and the autopilot's next evaluation. One updatable timer: the run loop sleeps until the earliest
deadline or until a handler changes something, then recomputes (temporal-notes §4.3)."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from activities.experiments import ExperimentActivities
from domain import operation_ids
from domain.experiment_messages import ExperimentSnapshot, ScheduleMarkInput, TransitionRequest
from domain.scheduling import ScheduledAction, next_action
from workflows import experiment_support as support
from workflows.experiment_autopilot import ExperimentAutopilot


class ExperimentTimers(ExperimentAutopilot):
    # Scheduled actions that failed and could not even be marked failed (kept in memory only).
    _gave_up: set[ScheduledAction] = set()

    def _setup_timers(self) -> None:
        self._gave_up = set()

    def _scheduled(self) -> ScheduledAction | None:
        snapshot = self._snapshot
        if snapshot is None or snapshot.deleted:
            return None
        return next_action(
            snapshot.scheduling_config, start_date=snapshot.start_date, end_date=snapshot.end_date
        )

    def _next_deadline(self) -> datetime | None:
        deadlines = [p.expires_at for p in self._pending.values()]
        scheduled = self._scheduled()
        if scheduled is not None and not self._holds_back(scheduled) and scheduled not in self._gave_up:
            deadlines.append(scheduled.at)
        evaluation = self._evaluation_due()  # None without autopilot rules: old histories unchanged
        if evaluation is not None:
            deadlines.append(evaluation)
        return min(deadlines) if deadlines else None

    def _holds_back(self, scheduled: ScheduledAction) -> bool:
        """A scheduled ship that is waiting for approval must not fire again meanwhile."""
        return scheduled.operation == "ship_variant" and any(
            p.operation == "ship_variant" for p in self._pending.values()
        )

    async def _on_deadline(self, deadline: datetime) -> None:
        due = max(deadline, workflow.now())
        await self._expire_due(due)
        await self._fire_due(due)
        await self._evaluate_due(due)

    async def _fire_due(self, due: datetime) -> None:
        async with self._lock:
            scheduled = self._scheduled()
            if scheduled is None or scheduled.at > due or self._holds_back(scheduled):
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
                    self._gave_up.add(scheduled)  # the database is unreachable: do not spin on it
                if state == "failed":
                    await self._record(self._note(scheduled.operation, "failed", "timer", None, err.message))

    async def _mark(self, scheduled: ScheduledAction, state: str, detail: str) -> None:
        snapshot: ExperimentSnapshot = await workflow.execute_local_activity_method(
            ExperimentActivities.mark_schedule,
            ScheduleMarkInput(
                experiment_id=self._experiment_id,
                action=scheduled.action,
                state=state,
                detail=detail,
                now=workflow.now(),
            ),
            start_to_close_timeout=support.LIFECYCLE_ACTIVITY_TIMEOUT,
            retry_policy=support.LIFECYCLE_RETRY,
        )
        self._snapshot = snapshot
        self._publish(snapshot)
