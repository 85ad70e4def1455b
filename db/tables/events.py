"""Ingested events, their definitions, and actions (referenced by ActionsNode metrics)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.types import JSONType, UTCDateTime, utcnow


class Event(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = (
        # Experiment analysis scans one project's events by name in time order; with distinct_id in
        # the index, events read without properties never touch the table (10x on SQLite:
        # db/metric_events.py, bench/timeseries.py).
        Index("ix_event_team_event_ts", "team_id", "event", "timestamp", "distinct_id"),
        UniqueConstraint("team_id", "uuid", name="uq_event_team_uuid"),
    )

    id: int | None = Field(default=None, primary_key=True)
    uuid: str = Field(max_length=36)
    team_id: int = Field(foreign_key="project.id")
    event: str = Field(max_length=400)
    distinct_id: str = Field(max_length=200)
    timestamp: datetime = Field(sa_type=UTCDateTime)
    properties: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EventDefinition(SQLModel, table=True):
    __tablename__ = "event_definition"
    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_event_definition_team_name"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(max_length=400)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Action(SQLModel, table=True):
    __tablename__ = "action"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(default="", max_length=400)
    steps: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONType)
    deleted: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
