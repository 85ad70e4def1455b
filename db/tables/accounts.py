"""Organizations, projects (PostHog "teams"), users and personal API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from db.types import JSONType, UTCDateTime, utcnow


class Organization(SQLModel, table=True):
    __tablename__ = "organization"

    id: str = Field(primary_key=True, max_length=36)  # uuid, as PostHog renders organization ids
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Project(SQLModel, table=True):
    __tablename__ = "project"

    id: int | None = Field(default=None, primary_key=True)
    organization_id: str = Field(foreign_key="organization.id", index=True, max_length=36)
    name: str = Field(max_length=200)
    api_token: str = Field(sa_column=Column(String(200), unique=True, nullable=False))
    secret_api_token: str | None = Field(default=None, sa_column=Column(String(200), unique=True))
    timezone: str = Field(default="UTC", max_length=240)
    # UTC hour of the daily experiment results refresh (PostHog's experiment_recalculation_time).
    experiment_recalculation_hour: int = Field(default=2, sa_column_kwargs={"server_default": "2"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class User(SQLModel, table=True):
    __tablename__ = "user"

    id: int | None = Field(default=None, primary_key=True)
    uuid: str = Field(max_length=36, unique=True)
    distinct_id: str = Field(max_length=200, unique=True)
    organization_id: str = Field(foreign_key="organization.id", index=True, max_length=36)
    current_project_id: int | None = Field(default=None, foreign_key="project.id")
    email: str = Field(max_length=254, unique=True)
    first_name: str = Field(default="", max_length=150)
    last_name: str = Field(default="", max_length=150)
    is_email_verified: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PersonalAPIKey(SQLModel, table=True):
    __tablename__ = "personal_api_key"

    id: str = Field(primary_key=True, max_length=50)
    user_id: int = Field(foreign_key="user.id", index=True)
    label: str = Field(max_length=40)
    # Only "sha256$<hex>" of the key is stored, as PostHog does; the secret is shown once.
    secure_value: str = Field(sa_column=Column(String(300), unique=True, nullable=False))
    mask_value: str = Field(max_length=11)
    scopes: list[str] = Field(default_factory=list, sa_type=JSONType)
    scoped_teams: list[int] | None = Field(default=None, sa_type=JSONType)
    scoped_organizations: list[str] | None = Field(default=None, sa_type=JSONType)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


class BootstrapKey(SQLModel, table=True):
    """Every BOOTSTRAP_PERSONAL_API_KEY ever applied (its hash): a bootstrap key someone deleted
    stays deleted at the next start, though the variable still holds it (compose keeps it set)."""

    __tablename__ = "bootstrap_key"

    secure_value: str = Field(sa_column=Column(String(300), primary_key=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
