"""API keys and scopes, as PostHog defines them (posthog-clients.md §6)."""

from __future__ import annotations

import hashlib
import secrets
import string
from typing import Any

PROJECT_TOKEN_PREFIX = "phc_"
PERSONAL_KEY_PREFIX = "phx_"
PROJECT_SECRET_PREFIX = "phs_"

_BASE62 = string.digits + string.ascii_letters


def random_token(nbytes: int = 32) -> str:
    """base62 of `nbytes` random bytes (PostHog's generate_random_token)."""
    number = int.from_bytes(secrets.token_bytes(nbytes), "big")
    digits = []
    while number:
        number, rem = divmod(number, 62)
        digits.append(_BASE62[rem])
    return "".join(reversed(digits)) or "0"


def new_project_token() -> str:
    return PROJECT_TOKEN_PREFIX + random_token(32)


def new_personal_api_key() -> str:
    return PERSONAL_KEY_PREFIX + random_token(35)


def new_project_secret() -> str:
    return PROJECT_SECRET_PREFIX + random_token(35)


def hash_key(value: str) -> str:
    """The stored form: only a hash ever reaches the database."""
    return "sha256$" + hashlib.sha256(value.encode()).hexdigest()


def mask_key(value: str) -> str:
    return f"{value[:4]}...{value[-4:]}"


# Scope objects PostHog knows that Flagship serves; `*` grants everything.
SCOPE_OBJECTS = (
    "experiment",
    "experiment_holdout",
    "experiment_saved_metric",
    "feature_flag",
    "query",
    "project",
    "organization",
    "user",
    "activity_log",
    "personal_api_key",
    "llm_prompt",
    "cohort",
    "approval_policy",
    "change_request",
    "event_definition",
    "action",
)


def is_valid_scope(scope: str) -> bool:
    if scope == "*":
        return True
    obj, _, action = scope.partition(":")
    return obj in SCOPE_OBJECTS and action in ("read", "write")


def scopes_allow(granted: list[str], required: str) -> bool:
    """`object:write` satisfies `object:read`; keys with no scopes (legacy) may do everything."""
    if not granted or "*" in granted:
        return True
    if required in granted:
        return True
    obj, _, action = required.partition(":")
    return action == "read" and f"{obj}:write" in granted


def scope_not_granted(granted: list[str], requested: list[str]) -> str | None:
    """The first of `requested` that a key holding `granted` may not hand on, else None: a key can
    only create keys within its own scopes. An empty list means everything (legacy keys), so only a
    key that has everything may create one."""
    if not granted or "*" in granted:
        return None
    if not requested:
        return "*"
    return next((scope for scope in requested if scope == "*" or not scopes_allow(granted, scope)), None)


def restriction_within(granted: list[Any] | None, requested: list[Any] | None) -> bool:
    """A `scoped_teams` / `scoped_organizations` restriction handed on: unset means every one, so a
    restricted key may only create keys restricted to a part of its own list."""
    if not granted:
        return True
    if not requested:
        return False
    return {str(item) for item in requested} <= {str(item) for item in granted}
