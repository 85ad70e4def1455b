"""`create_from_prompt/` (reference §4.15): an experiment comparing versions of an LLM prompt."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext
from api.experiments.create_experiment import create_via_workflow
from api.temporal import TemporalConnection
from db import flags as flag_queries
from db.experiment_names import flag_keys_starting_with
from db.llm_prompts import existing_versions
from db.tables import Experiment, FeatureFlag
from domain.prompt_experiments import (
    default_experiment_name,
    default_flag_key,
    flag_key_base,
    prompt_parameters,
    template_metric,
)
from domain.prompt_input import (
    PromptExperimentInput,
    flag_key_taken_error,
    missing_versions_error,
    parse_prompt_experiment_input,
)


async def _validate(session: AsyncSession, team_id: int, data: PromptExperimentInput) -> None:
    """The serializer's `validate()`: every version exists, and an explicit flag key is new (reusing
    a flag would lose the per-variant prompt payloads the SDK reads)."""
    found = await existing_versions(session, team_id, data.prompt_name, data.versions)
    missing = [version for version in data.versions if version not in found]
    if missing:
        raise missing_versions_error(data.prompt_name, missing)
    key = data.feature_flag_key
    if key and await flag_queries.any_flag_by_key(session, team_id, key) is not None:
        raise flag_key_taken_error(key)


async def prompt_experiment_body(session: AsyncSession, team_id: int, raw: dict[str, Any]) -> dict[str, Any]:
    data = parse_prompt_experiment_input(raw)
    await _validate(session, team_id, data)
    name = data.name or default_experiment_name(data.prompt_name, data.versions, data.templates)
    key = data.feature_flag_key
    if not key:
        taken = await flag_keys_starting_with(session, team_id, flag_key_base(name))
        key = default_flag_key(name, taken.__contains__)
    return {
        "name": name,
        "feature_flag_key": key,
        "description": data.description or "",
        "parameters": prompt_parameters(data.prompt_name, data.versions, data.templates),
        "metrics": [template_metric(template, data.prompt_name) for template in data.templates],
        # The templates name known LLM events: refusing them before the first one is ingested helps nobody.
        "allow_unknown_events": True,
    }


async def create_from_prompt(
    session: AsyncSession,
    temporal: TemporalConnection,
    ctx: ProjectContext,
    raw: dict[str, Any],
    idempotency_key: str | None,
) -> tuple[Experiment, FeatureFlag | None]:
    body = await prompt_experiment_body(session, ctx.project_id, raw)
    return await create_via_workflow(
        session,
        temporal,
        team_id=ctx.project_id,
        actor_id=ctx.principal.user_id,
        body=body,
        update_id=idempotency_key,
        request=raw,
    )
