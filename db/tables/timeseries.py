"""Stored metric results (one per experiment, metric and `query_to`) and recalculation requests
(reference §1.9)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from db.types import JSONType, UTCDateTime, utcnow

RESULT_STATUSES = ("pending", "completed", "failed")
RECALCULATION_STATUSES = ("pending", "in_progress", "completed", "failed")
ACTIVE_RECALCULATION = "status IN ('pending', 'in_progress')"


class ExperimentMetricResult(SQLModel, table=True):
    __tablename__ = "experiment_metric_result"
    __table_args__ = (
        # The upsert key of the backfill and of the daily refresh: re-running a day overwrites it.
        UniqueConstraint("experiment_id", "metric_uuid", "query_to", name="uq_metric_result_query_to"),
        # The read endpoint's lookup.
        Index("ix_metric_result_fingerprint", "experiment_id", "metric_uuid", "fingerprint"),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", ondelete="CASCADE")
    metric_uuid: str = Field(max_length=255)
    fingerprint: str | None = Field(default=None, max_length=64)
    query_from: datetime = Field(sa_type=UTCDateTime)
    query_to: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="pending", max_length=20)  # pending | completed | failed
    result: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    query_id: str | None = Field(default=None, max_length=255)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error_message: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExperimentTimeseriesRecalculation(SQLModel, table=True):
    __tablename__ = "experiment_timeseries_recalculation"
    __table_args__ = (
        # At most one active request per (experiment, fingerprint): a concurrent duplicate POST
        # fails on insert and is answered with the existing request.
        Index(
            "uq_timeseries_recalculation_active",
            "experiment_id",
            "fingerprint",
            unique=True,
            sqlite_where=text(ACTIVE_RECALCULATION),
            postgresql_where=text(ACTIVE_RECALCULATION),
        ),
    )

    id: str = Field(primary_key=True, max_length=36)  # uuid4, also in the workflow id
    team_id: int = Field(foreign_key="project.id", index=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True, ondelete="CASCADE")
    metric: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    fingerprint: str = Field(max_length=64)
    status: str = Field(default="pending", max_length=20)  # pending | in_progress | completed | failed
    last_successful_date: date | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
