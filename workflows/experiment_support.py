"""Pieces of the experiment workflow that are not handlers: error conversion, search attributes,
activity options and the lifecycle's local activities. Deterministic (imported inside the workflow
sandbox); the activity calls are commands of the workflow that awaits them."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from activities.errors import to_application_error
from activities.experiments import ExperimentActivities
from domain.errors import Conflict, DomainError, NotFound, Unavailable
from domain.experiment_messages import (
    ActivityInput,
    ExperimentSnapshot,
    HistoryEntry,
    RecordInput,
    ScheduleMarkInput,
    TransitionRequest,
    Truth,
    TruthInput,
)
from domain.experiment_state import ExperimentState
from domain.failures import NON_RETRYABLE
from domain.lifecycle import Operation
from domain.scheduling import ScheduledAction, next_action, scheduled_end_at
from workflows.patches import UPSERT_ONLY_CHANGES
from workflows.search_attributes import (
    EXPERIMENT_ID,
    EXPERIMENT_STATUS,
    FEATURE_FLAG_KEY,
    PROJECT_ID,
    SCHEDULED_END_AT,
)

# The lifecycle write is one short SQL transaction. 10 s covers a busy SQLite lock wait; five
# attempts bound the HTTP call (an unbounded retry would leave the caller hanging, notes §1.3).
LIFECYCLE_ACTIVITY_TIMEOUT = timedelta(seconds=10)
LIFECYCLE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=2),
    maximum_attempts=5,
    non_retryable_error_types=list(NON_RETRYABLE),  # refusals fail again the same way
)

BUSY_MESSAGE = "Another transition of this experiment is in progress. Retry shortly."
QUEUED_MESSAGE = (
    "Experiment changes are queued behind others right now, so this change was not applied. "
    "Retry it (with the same Idempotency-Key, if you sent one)."
)


def rejection(err: DomainError) -> ApplicationError:
    """A domain error as the update failure the API maps back to PostHog's 4xx."""
    return to_application_error(err)


def busy() -> ApplicationError:
    return to_application_error(Conflict(BUSY_MESSAGE))


def check_deadline(apply_by: datetime | None) -> None:
    """Refuse an update that reached the workflow after its caller's deadline (validators only).

    The API stops waiting a little after `apply_by`; an update admitted later could be applied
    after its caller was answered 503. Refused here it is not in history, so a retry with the
    same Idempotency-Key (the same update id) is a fresh attempt."""
    if apply_by is not None and workflow.now() > apply_by:
        raise to_application_error(Unavailable(QUEUED_MESSAGE, code="queued"))


def not_found() -> ApplicationError:
    return to_application_error(NotFound())


def from_activity_error(err: ActivityError) -> ApplicationError:
    """Surface the activity's own failure (type, message, details) as the update's failure."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return ApplicationError(cause.message, *cause.details, type=cause.type or "ActivityFailed")
    return to_application_error(
        Unavailable("The change could not be applied. Try again shortly.", code="activity_failed")
    )


def truth_from_failure(err: ActivityError) -> Truth | None:
    """The row's truth attached to a refused activity (see activities.experiments._truth)."""
    cause = err.cause
    if not isinstance(cause, ApplicationError) or not cause.details:
        return None
    info = cause.details[0]
    raw = info.get("snapshot") if isinstance(info, dict) else None
    return Truth.model_validate(raw) if raw else None


def scheduled_end(snapshot: ExperimentSnapshot) -> datetime | None:
    """When the timer will end this experiment, for `ExperimentScheduledEndAt`."""
    action = next_action(
        snapshot.scheduling_config, start_date=snapshot.start_date, end_date=snapshot.end_date
    )
    if action is None:
        return None
    if action.action == "end":
        return action.at
    return scheduled_end_at(snapshot.scheduling_config, action.at)


def search_attribute_updates(snapshot: ExperimentSnapshot, had_end: bool) -> list[object]:
    updates: list[object] = [
        EXPERIMENT_STATUS.value_set(snapshot.status.value),
        EXPERIMENT_ID.value_set(snapshot.experiment_id),
        PROJECT_ID.value_set(snapshot.project_id),
    ]
    if snapshot.flag_key:
        updates.append(FEATURE_FLAG_KEY.value_set(snapshot.flag_key))
    end = scheduled_end(snapshot)
    if end is not None:
        updates.append(SCHEDULED_END_AT.value_set(end))
    elif had_end:
        updates.append(SCHEDULED_END_AT.value_unset())
    return updates


Published = tuple[str, str | None, str, datetime | None]


def published_fields(snapshot: ExperimentSnapshot) -> Published:
    return (snapshot.status.value, snapshot.flag_key, snapshot.name, scheduled_end(snapshot))


def upsert_state(snapshot: ExperimentSnapshot, published: Published | None) -> None:
    """Publish status, flag key, scheduled end and name to visibility (search attributes, memo)."""
    if workflow.patched(UPSERT_ONLY_CHANGES) and published == published_fields(snapshot):
        return
    had_end = published is not None and published[3] is not None
    workflow.upsert_search_attributes(search_attribute_updates(snapshot, had_end))  # type: ignore[arg-type]
    if not workflow.patched(UPSERT_ONLY_CHANGES) or published is None or published[2] != snapshot.name:
        workflow.upsert_memo({"name": snapshot.name})


def current_details(snapshot: ExperimentSnapshot) -> str:
    """What an operator reads first in the Temporal UI: status, and the autopilot's last verdict."""
    lines = [f"**{snapshot.name}** · {snapshot.status.value}"]
    verdict = ((snapshot.scheduling_config or {}).get("status") or {}).get("autopilot")
    if isinstance(verdict, dict) and verdict.get("summary"):
        lines.append(f"Autopilot ({verdict.get('at')}): {verdict['summary']}")
    return "\n\n".join(lines)


# ---- the lifecycle's local activities -----------------------------------------------------


def activity_input(
    state: ExperimentState, op_id: str, operation: Operation, req: TransitionRequest
) -> ActivityInput:
    return ActivityInput(
        op_id=op_id,
        operation=operation,
        project_id=state.project_id,
        experiment_id=state.experiment_id,
        now=workflow.now(),
        request=req,
    )


async def load_truth(experiment_id: int) -> Truth:
    truth: Truth = await workflow.execute_local_activity_method(
        ExperimentActivities.load_truth,
        TruthInput(experiment_id=experiment_id),
        start_to_close_timeout=LIFECYCLE_ACTIVITY_TIMEOUT,
        retry_policy=LIFECYCLE_RETRY,
    )
    return truth


async def record_history(state: ExperimentState, entry: HistoryEntry) -> None:
    """Audit in SQL what only the workflow saw (signals and timers have no caller)."""
    await workflow.execute_local_activity_method(
        ExperimentActivities.record_history,
        RecordInput(project_id=state.project_id, experiment_id=state.experiment_id, entry=entry),
        start_to_close_timeout=LIFECYCLE_ACTIVITY_TIMEOUT,
        retry_policy=LIFECYCLE_RETRY,
    )


async def mark_schedule(
    experiment_id: int, scheduled: ScheduledAction, state: str, detail: str
) -> ExperimentSnapshot:
    """Record in `scheduling_config.status` what the timer did with a scheduled action."""
    snapshot: ExperimentSnapshot = await workflow.execute_local_activity_method(
        ExperimentActivities.mark_schedule,
        ScheduleMarkInput(
            experiment_id=experiment_id,
            action=scheduled.action,
            state=state,
            detail=detail,
            now=workflow.now(),
        ),
        start_to_close_timeout=LIFECYCLE_ACTIVITY_TIMEOUT,
        retry_policy=LIFECYCLE_RETRY,
    )
    return snapshot
