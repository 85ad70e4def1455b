"""Cohorts: saved groups of persons, defined by filters (PostHog's `posthog_cohort`).

Flagship creates dynamic cohorts for experiment exposure; their members are computed from the event
store when read (there is no person table or background calculation here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from db.types import JSONType, UTCDateTime, utcnow


class Cohort(SQLModel, table=True):
    __tablename__ = "cohort"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(max_length=400)
    description: str = Field(default="", max_length=1000)
    filters: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    groups: list[Any] = Field(default_factory=list, sa_type=JSONType)
    is_static: bool = False
    is_calculating: bool = False
    deleted: bool = False
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
