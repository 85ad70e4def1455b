"""Feature-flag request bodies and the representations PostHog returns."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.render import iso
from api.schemas.accounts import user_basic
from db.tables import FeatureFlag, User

EvaluationRuntime = Literal["server", "client", "all"]


class FeatureFlagCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str
    name: str = Field(default="", max_length=2000)
    filters: dict[str, Any] = Field(default_factory=dict)
    active: bool = True
    ensure_experience_continuity: bool = False
    evaluation_runtime: EvaluationRuntime = "all"
    evaluation_tags: list[str] = Field(default_factory=list)


class FeatureFlagUpdate(BaseModel):
    """Only the fields sent are applied (`exclude_unset`); none may be null, as none is in the
    table (DRF: "This field may not be null.")."""

    model_config = ConfigDict(extra="ignore")

    key: str = ""
    name: str = Field(default="", max_length=2000)
    filters: dict[str, Any] = Field(default_factory=dict)
    active: bool = True
    deleted: bool = False
    ensure_experience_continuity: bool = False
    evaluation_runtime: EvaluationRuntime = "all"
    evaluation_tags: list[str] = Field(default_factory=list)


def rollout_percentage(filters: dict[str, Any]) -> int | float | None:
    groups = filters.get("groups") or []
    if len(groups) == 1 and not groups[0].get("properties"):
        value = groups[0].get("rollout_percentage")
        return value if isinstance(value, int | float) else None
    return None


def minimal_flag_out(flag: FeatureFlag) -> dict[str, Any]:
    """MinimalFeatureFlagSerializer: the `feature_flag` of an experiment."""
    return {
        "id": flag.id,
        "team_id": flag.team_id,
        "name": flag.name,
        "key": flag.key,
        "filters": flag.filters,
        "deleted": flag.deleted,
        "active": flag.active,
        "ensure_experience_continuity": flag.ensure_experience_continuity,
        "has_encrypted_payloads": False,
        "version": flag.version,
        "evaluation_runtime": flag.evaluation_runtime,
        "evaluation_tags": list(flag.evaluation_tags),
    }


def flag_out(flag: FeatureFlag, created_by: User | None, experiment_ids: list[int]) -> dict[str, Any]:
    groups = flag.filters.get("groups") or []
    return minimal_flag_out(flag) | {
        "created_by": user_basic(created_by),
        "created_at": iso(flag.created_at),
        "updated_at": iso(flag.updated_at),
        "is_simple_flag": len(groups) == 1
        and not groups[0].get("properties")
        and not flag.filters.get("multivariate"),
        "rollout_percentage": rollout_percentage(flag.filters),
        "experiment_set": experiment_ids,
        "surveys": [],
        "features": [],
        "tags": [],
        "creation_context": flag.creation_context,
        "is_remote_configuration": False,
        "status": "ACTIVE" if flag.active else "INACTIVE",
        "can_edit": True,
        "user_access_level": "editor",
    }
