"""The user representation PostHog nests as `created_by` (UserBasicSerializer)."""

from __future__ import annotations

from typing import Any, Protocol


class UserLike(Protocol):
    id: int | None
    uuid: str
    distinct_id: str
    first_name: str
    last_name: str
    email: str
    is_email_verified: bool


def user_basic(user: UserLike | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.id,
        "uuid": user.uuid,
        "distinct_id": user.distinct_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_email_verified": user.is_email_verified,
        "hedgehog_config": None,
        "role_at_organization": None,
    }
