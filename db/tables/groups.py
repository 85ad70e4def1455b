"""Group types of a project: PostHog keys groups by type name, flags by `aggregation_group_type_index`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from db.types import UTCDateTime, utcnow

# PostHog allows five group types per project, indexed 0..4 in order of first sight.
MAX_GROUP_TYPES = 5


class GroupTypeMapping(SQLModel, table=True):
    __tablename__ = "group_type_mapping"
    __table_args__ = (
        UniqueConstraint("team_id", "group_type", name="uq_group_type_mapping_team_type"),
        # Two processes seeing new group types at once must not hand out the same index.
        UniqueConstraint("team_id", "group_type_index", name="uq_group_type_mapping_team_index"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="project.id", index=True)
    group_type: str = Field(max_length=400)
    group_type_index: int
    name_singular: str | None = Field(default=None, max_length=400)
    name_plural: str | None = Field(default=None, max_length=400)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
