"""Messages and state of the experiment workflow: plain pydantic DTOs, tz-aware only.

No clock or uuid default factories here (temporal-notes §5): times come from `workflow.now()`.
These models cross the workflow/activity boundary, so they carry ids and values, never rows.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, computed_field

from domain.lifecycle import Intent, LifecycleFacts, Operation, Status, status_of

Via = Literal["rest", "signal", "timer", "approval", "autopilot"]


class ExperimentSnapshot(BaseModel):
    """The lifecycle-relevant part of an experiment row and its flag."""

    project_id: int
    experiment_id: int
    name: str
    flag_id: int | None
    flag_key: str | None
    flag_active: bool
    flag_deleted: bool = False
    flag_version: int = 0
    flag_variant_keys: list[str] = Field(default_factory=list)
    start_date: AwareDatetime | None = None
    end_date: AwareDatetime | None = None
    archived: bool = False
    deleted: bool = False
    version: int = 0
    # Drives the workflow's timer (domain/scheduling.py); absent in histories recorded before it.
    scheduling_config: dict[str, Any] | None = None
    # Whether the experiment has a metric to compute, looked up by the transitions that launch or
    # end it; None when not looked up (and in histories recorded before it): recalculate then.
    has_metrics: bool | None = None

    def facts(self) -> LifecycleFacts:
        return LifecycleFacts(
            start_date=self.start_date,
            end_date=self.end_date,
            archived=self.archived,
            flag_active=self.flag_active,
            flag_deleted=self.flag_deleted,
            has_flag=self.flag_id is not None,
            flag_variant_keys=tuple(self.flag_variant_keys),
            scheduling_config=self.scheduling_config,
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Status:
        """Serialized too: the `state` query shows operators where the experiment is."""
        return status_of(self.facts())

    def newest(self, observed: ExperimentSnapshot | None) -> ExperimentSnapshot:
        """The flag may change outside the workflow (flags API): adopt a newer observation."""
        if observed is None or observed.flag_version <= self.flag_version:
            return self
        return self.model_copy(
            update={
                "flag_active": observed.flag_active,
                "flag_deleted": observed.flag_deleted,
                "flag_version": observed.flag_version,
                "flag_variant_keys": observed.flag_variant_keys,
            }
        )


class TransitionRequest(BaseModel):
    """One lifecycle operation, from REST, a signal or a timer."""

    actor_id: int | None = None
    via: Via = "rest"
    conclusion: str | None = None
    conclusion_comment: str | None = None
    # `end` sets conclusion/comment to the sent values (null when omitted); ship only when given.
    conclusion_provided: bool = False
    variant_key: str | None = None
    release_to_everyone: bool = False
    observed: ExperimentSnapshot | None = None
    request_id: str | None = None
    # The latest workflow time at which a REST caller still waits for the answer (None: no caller).
    apply_by: AwareDatetime | None = None
    # Set when applying an approved change request: the approval gate is already passed.
    approved_change_request_id: str | None = None
    # An autopilot decision: applied only to the row version it was judged on, with its evidence.
    expected_version: int | None = None
    evidence: dict[str, Any] | None = None

    def intent(self) -> Intent:
        return Intent(
            via=self.via,
            variant_key=self.variant_key,
            release_to_everyone=self.release_to_everyone,
            conclusion=self.conclusion,
            conclusion_comment=self.conclusion_comment,
            conclusion_provided=self.conclusion_provided,
        )


class EvaluateRequest(BaseModel):
    """The `evaluate_rules` update: evaluate the autopilot rules now (REST or an operator)."""

    actor_id: int | None = None
    request_id: str | None = None
    apply_by: AwareDatetime | None = None


class CreateRequest(BaseModel):
    """A fully validated create: the API resolved names, defaults, metrics and the flag plan."""

    actor_id: int | None
    row: dict[str, Any]  # experiment columns (JSON-safe), id included
    flag_id: int | None  # existing flag to reuse
    new_flag: dict[str, Any] | None  # flag columns to insert when no flag exists
    saved_metric_links: list[dict[str, Any]] = Field(default_factory=list)
    request_id: str | None = None
    apply_by: AwareDatetime | None = None


class UpdateRequest(BaseModel):
    """A validated PATCH: new column values and an optional flag change, computed by the API."""

    actor_id: int | None
    changes: dict[str, Any]  # experiment columns to set (JSON-safe)
    flag_changes: dict[str, Any] | None = None  # flag columns to set
    saved_metric_links: list[dict[str, Any]] | None = None
    assumed_status: Status  # the status the API validated against; a different one is a conflict
    observed: ExperimentSnapshot | None = None
    request_id: str | None = None
    apply_by: AwareDatetime | None = None
    # Set when applying an approved change request: the approval gate is already passed.
    approved_change_request_id: str | None = None


class HistoryEntry(BaseModel):
    operation: str
    # shadow: what the autopilot would have done in `shadow` mode; notified: a decision that only
    # notifies (an SRM rule with action notify).
    outcome: Literal["accepted", "rejected", "failed", "approval_required", "shadow", "notified"]
    via: Via
    actor_id: int | None = None
    at: AwareDatetime
    from_status: Status | None = None
    to_status: Status | None = None
    detail: str | None = None
    update_id: str | None = None
    # The row version the transition produced: orders recovered entries among the others.
    version: int | None = None
    evidence: dict[str, Any] | None = None  # an autopilot decision's (see ExperimentActivity)


class ActivityInput(BaseModel):
    """What a lifecycle activity needs: the operation, its target and its idempotency key."""

    op_id: str
    operation: Operation
    project_id: int
    experiment_id: int
    now: AwareDatetime
    request: TransitionRequest


class AppliedRecord(BaseModel):
    """An operation the database applied, as the idempotency table remembers it."""

    op_id: str
    operation: str | None
    at: AwareDatetime
    result: ExperimentSnapshot


class Truth(BaseModel):
    """The row's current snapshot and its recently applied operations (oldest first)."""

    snapshot: ExperimentSnapshot
    applied: list[AppliedRecord] = Field(default_factory=list)


class TruthInput(BaseModel):
    experiment_id: int


class ScheduleMarkInput(BaseModel):
    """Record in `scheduling_config.status` what the timer did with one scheduled action."""

    experiment_id: int
    action: Literal["launch", "end"]
    state: str
    detail: str | None = None
    now: AwareDatetime


class RecordInput(BaseModel):
    project_id: int
    experiment_id: int
    entry: HistoryEntry


class PendingChange(BaseModel):
    """A change waiting for approval, kept durably in the workflow until applied or dropped."""

    change_request_id: str
    operation: str
    expires_at: AwareDatetime
    requested_by: int | None = None


class ApprovalGranted(BaseModel):
    """Signal `approval_granted`: from the approve endpoint, or any approval system via Temporal."""

    change_request_id: str
    approver_id: int | None = None
    source: Literal["api", "external"] = "external"


class ChangeRequestClosed(BaseModel):
    """Signal `change_request_closed`: rejected or cancelled through the API."""

    change_request_id: str
    state: Literal["rejected", "cancelled", "expired", "failed"]
    actor_id: int | None = None


class WorkflowInput(BaseModel):
    project_id: int
    experiment_id: int
    snapshot: ExperimentSnapshot | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    # update id -> snapshot returned, carried across continue-as-new (server dedup is per run).
    results: dict[str, ExperimentSnapshot] = Field(default_factory=dict)
    pending: list[PendingChange] = Field(default_factory=list)
