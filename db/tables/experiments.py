"""Experiments (the SQL read model), their audit trail, and idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from db.types import JSONType, UTCDateTime, utcnow


class Experiment(SQLModel, table=True):
    __tablename__ = "experiment"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(max_length=400)
    description: str | None = Field(default="", max_length=3000)
    filters: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    parameters: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    secondary_metrics: list[Any] = Field(default_factory=list, sa_type=JSONType)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    feature_flag_id: int = Field(foreign_key="feature_flag.id", index=True)
    exposure_cohort_id: int | None = None
    holdout_id: int | None = None
    start_date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    archived: bool = False
    deleted: bool = False
    type: str | None = Field(default="product", max_length=40)
    variants: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    exposure_criteria: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    metrics: list[Any] = Field(default_factory=list, sa_type=JSONType)
    metrics_secondary: list[Any] = Field(default_factory=list, sa_type=JSONType)
    primary_metrics_ordered_uuids: list[str] | None = Field(default=None, sa_type=JSONType)
    secondary_metrics_ordered_uuids: list[str] | None = Field(default=None, sa_type=JSONType)
    stats_config: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    scheduling_config: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    only_count_matured_users: bool = False
    # Stored as PostHog does, always recomputed from the dates on save (draft/running/stopped).
    status: str | None = Field(default="draft", max_length=20)
    conclusion: str | None = Field(default=None, max_length=30)
    conclusion_comment: str | None = None
    # Bumped on every accepted write; the workflow uses it for timer-driven operation ids.
    version: int = 0


class ExperimentActivity(SQLModel, table=True):
    """One row per transition attempt (accepted or rejected): the audit trail behind /activity/."""

    __tablename__ = "experiment_activity"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(index=True)
    experiment_id: int = Field(index=True)
    operation: str = Field(max_length=40)
    outcome: str = Field(max_length=20)  # accepted | rejected | approval_required | failed
    via: str = Field(max_length=20)  # rest | signal | timer | approval
    actor_id: int | None = None
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str | None = Field(default=None, max_length=20)
    detail: str | None = None
    operation_id: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # An autopilot decision's evidence (domain.autopilot.decide.Decision): rule, metric, per-variant
    # statistics, SRM p-value, when it was judged and what was done.
    evidence: dict[str, Any] | None = Field(default=None, sa_type=JSONType)


class AppliedOperation(SQLModel, table=True):
    """Idempotency record: an operation id is applied at most once (temporal-notes §8)."""

    __tablename__ = "applied_operation"

    op_id: str = Field(primary_key=True, max_length=200)
    experiment_id: int | None = Field(default=None, index=True)
    operation: str | None = Field(default=None, max_length=40)
    result: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    # The experiment and flag rows as this operation left them (db.experiments.row_image): the API
    # renders its 200 body from it, so the body is never a later state another write produced.
    # A row with `operation` ABANDONED and no result is a fence the API set when it gave up.
    image: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExperimentIdAllocation(SQLModel, table=True):
    """Experiment ids are allocated before the row exists: the workflow id needs the id, and the
    row is written by the workflow's create activity (design.md §1, one writer per experiment)."""

    __tablename__ = "experiment_id_allocation"

    __table_args__ = (Index("ix_experiment_id_allocation_key", "team_id", "idempotency_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # A create sent with an Idempotency-Key keeps its id: a retry with the same key and body gets
    # the same experiment (and the same workflow), one with another body is refused (422).
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_hash: str | None = Field(default=None, max_length=64)
