"""Request and response shapes for users, projects and personal API keys."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.render import iso
from db.tables import Organization, PersonalAPIKey, Project
from domain.users import user_basic

__all__ = ["user_basic"]


class PersonalAPIKeyCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    label: str = Field(max_length=40)
    scopes: list[str] = Field(default_factory=lambda: ["*"])
    scoped_teams: list[int] | None = None
    scoped_organizations: list[str] | None = None


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(max_length=200, min_length=1)
    timezone: str = "UTC"


def organization_out(org: Organization) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "created_at": iso(org.created_at), "membership_level": 15}


def project_out(project: Project, *, include_secret: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": project.id,
        "uuid": None,
        "organization": project.organization_id,
        "project_id": project.id,
        "name": project.name,
        "api_token": project.api_token,
        "timezone": project.timezone,
        "created_at": iso(project.created_at),
    }
    if include_secret:
        out["secret_api_token"] = project.secret_api_token
    return out


def team_basic(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "project_id": project.id,
        "organization": project.organization_id,
        "name": project.name,
        "api_token": project.api_token,
        "timezone": project.timezone,
    }


def personal_key_out(key: PersonalAPIKey, *, value: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": key.id,
        "label": key.label,
        "mask_value": key.mask_value,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at),
        "user_id": key.user_id,
        "scopes": list(key.scopes),
        "scoped_teams": list(key.scoped_teams or []),
        "scoped_organizations": list(key.scoped_organizations or []),
    }
    if value is not None:
        out["value"] = value
    return out
