"""Versioned LLM prompts (PostHog's `posthog_llmprompt`): one row per published version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from db.types import JSONType, UTCDateTime, utcnow


class LLMPrompt(SQLModel, table=True):
    __tablename__ = "llm_prompt"
    __table_args__ = (
        # Two concurrent publishes on the same base version race for the same number: the index
        # decides. Archived (deleted) prompts free their name for a new prompt.
        Index(
            "uq_llm_prompt_team_name_version_live",
            "team_id",
            "name",
            "version",
            unique=True,
            sqlite_where=text("deleted = 0"),
            postgresql_where=text("deleted = false"),
        ),
    )

    id: str = Field(primary_key=True, max_length=36)  # uuid, as PostHog renders prompt ids
    team_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(max_length=255)
    prompt: Any = Field(default=None, sa_type=JSONType)
    version: int = 1
    is_latest: bool = True
    deleted: bool = False
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
