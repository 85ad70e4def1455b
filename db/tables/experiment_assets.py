"""Holdouts and saved (shared) metrics, and the links from experiments to saved metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from db.types import JSONType, UTCDateTime, utcnow


class ExperimentHoldout(SQLModel, table=True):
    __tablename__ = "experiment_holdout"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(max_length=400)
    description: str | None = Field(default=None, max_length=400)
    filters: list[Any] = Field(default_factory=list, sa_type=JSONType)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExperimentSavedMetric(SQLModel, table=True):
    __tablename__ = "experiment_saved_metric"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(max_length=400)
    description: str | None = Field(default=None, max_length=400)
    query: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSONType, sa_column_kwargs={"name": "metadata"}
    )
    tags: list[str] = Field(default_factory=list, sa_type=JSONType)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ExperimentToSavedMetric(SQLModel, table=True):
    __tablename__ = "experiment_to_saved_metric"
    __table_args__ = (
        UniqueConstraint("experiment_id", "saved_metric_id", name="uq_experiment_saved_metric"),
    )

    id: int | None = Field(default=None, primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id", index=True, ondelete="CASCADE")
    saved_metric_id: int = Field(foreign_key="experiment_saved_metric.id", index=True, ondelete="CASCADE")
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSONType, sa_column_kwargs={"name": "metadata"}
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
