"""The one registry of custom search attributes: the dev server flags, the production registration
and the test fixture are all generated from this list (temporal-notes §6)."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

EXPERIMENT_ID = SearchAttributeKey.for_int("ExperimentId")
PROJECT_ID = SearchAttributeKey.for_int("ProjectId")
EXPERIMENT_STATUS = SearchAttributeKey.for_keyword("ExperimentStatus")
FEATURE_FLAG_KEY = SearchAttributeKey.for_keyword("FeatureFlagKey")
SCHEDULED_END_AT = SearchAttributeKey.for_datetime("ExperimentScheduledEndAt")

ALL_KEYS: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
    EXPERIMENT_ID,
    PROJECT_ID,
    EXPERIMENT_STATUS,
    FEATURE_FLAG_KEY,
    SCHEDULED_END_AT,
)

# `temporal server start-dev --search-attribute NAME=TYPE` spells the types like this.
_CLI_TYPE = {"INT": "Int", "KEYWORD": "Keyword", "DATETIME": "Datetime", "TEXT": "Text", "BOOL": "Bool"}


def cli_flags() -> list[str]:
    flags: list[str] = []
    for key in ALL_KEYS:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPE[key.indexed_value_type.name]}"]
    return flags


def start_search_attributes(
    project_id: int, experiment_id: int, status: str, flag_key: str | None
) -> TypedSearchAttributes:
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(PROJECT_ID, project_id),
        SearchAttributePair(EXPERIMENT_ID, experiment_id),
        SearchAttributePair(EXPERIMENT_STATUS, status),
    ]
    if flag_key:
        pairs.append(SearchAttributePair(FEATURE_FLAG_KEY, flag_key))
    return TypedSearchAttributes(pairs)
