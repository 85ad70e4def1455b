"""Feature flags, with PostHog's fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from db.types import JSONType, UTCDateTime, utcnow


class FeatureFlag(SQLModel, table=True):
    __tablename__ = "feature_flag"
    # A key is unique among a project's live flags; soft-deleted flags free their key.
    __table_args__ = (
        Index(
            "uq_feature_flag_team_key_live",
            "team_id",
            "key",
            unique=True,
            sqlite_where=text("deleted = 0"),
            postgresql_where=text("deleted = false"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="project.id", index=True)
    key: str = Field(max_length=400)
    name: str = Field(default="", max_length=2000)
    filters: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    active: bool = True
    deleted: bool = False
    ensure_experience_continuity: bool = False
    version: int = 1
    evaluation_runtime: str = Field(default="all", max_length=10)
    evaluation_tags: list[str] = Field(default_factory=list, sa_type=JSONType)
    creation_context: str | None = Field(default=None, max_length=50)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
