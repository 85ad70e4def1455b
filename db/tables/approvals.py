"""Approval policies, change requests and the approvals given on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from db.types import JSONType, UTCDateTime, utcnow

DEFAULT_EXPIRY_SECONDS = 7 * 24 * 3600


class ApprovalPolicy(SQLModel, table=True):
    __tablename__ = "approval_policy"

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="project.id", index=True)
    action_key: str = Field(max_length=60)  # feature_flag.update | feature_flag.enable | feature_flag.disable
    approver_config: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)  # {quorum, users}
    allow_self_approve: bool = False
    enabled: bool = True
    # How long a change request waits for its approvals before it expires (default 7 days).
    expiry_seconds: int = DEFAULT_EXPIRY_SECONDS
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ChangeRequest(SQLModel, table=True):
    __tablename__ = "change_request"

    id: str = Field(primary_key=True, max_length=36)
    team_id: int = Field(foreign_key="project.id", index=True)
    experiment_id: int | None = Field(default=None, index=True)
    action_key: str = Field(max_length=60)
    action_version: int = 1
    resource_type: str = Field(default="feature_flag", max_length=40)
    resource_id: str | None = Field(default=None, max_length=64)
    intent: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    intent_hash: str = Field(max_length=64, index=True)
    intent_display: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    policy_snapshot: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    state: str = Field(
        default="pending", max_length=20
    )  # pending|approved|applied|rejected|cancelled|expired|failed
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    applied_by_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    apply_error: str | None = None
    result_data: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    # The operation id that raised it: a retried activity finds its own request again.
    origin_op_id: str | None = Field(default=None, max_length=200, index=True)


class ChangeRequestApproval(SQLModel, table=True):
    __tablename__ = "change_request_approval"

    id: int | None = Field(default=None, primary_key=True)
    change_request_id: str = Field(foreign_key="change_request.id", index=True)
    user_id: int | None = None  # None: an external approval system, through Temporal
    decision: str = Field(max_length=20)  # approved | rejected
    comment: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
