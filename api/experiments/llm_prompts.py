"""LLM prompts (PostHog `llm_analytics`): create at version 1, publish the next version by name.

Enough of the prompt API to back `create_from_prompt`: experiments refer to prompt versions by the
numbers published here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext
from api.errors import RawError
from api.render import iso
from api.schemas.accounts import user_basic
from db import accounts
from db import llm_prompts as queries
from db.tables import LLMPrompt
from db.types import utcnow
from domain.errors import ValidationFailed
from domain.llm_prompt_rules import (
    MSG_CONFLICT,
    MSG_NAME_TAKEN,
    validate_base_version,
    validate_prompt_name,
    validate_prompt_payload,
)


def _required(body: dict[str, Any], attr: str) -> Any:
    if attr not in body:
        raise ValidationFailed("This field is required.", attr=attr, code="required")
    return body[attr]


def _name_taken() -> ValidationFailed:
    return ValidationFailed(MSG_NAME_TAKEN, attr="name", code="unique")


def not_found(name: str) -> RawError:
    return RawError(404, {"detail": f"Prompt with name '{name}' not found."})


async def public_out(session: AsyncSession, prompt: LLMPrompt) -> dict[str, Any]:
    """LLMPromptPublicSerializer: the prompt with its version history summary."""
    return public_shape(prompt, await queries.version_summary(session, prompt.team_id, prompt.name))


def public_shape(prompt: LLMPrompt, summary: queries.VersionSummary | None) -> dict[str, Any]:
    return {
        "id": prompt.id,
        "name": prompt.name,
        "prompt": prompt.prompt,
        "version": prompt.version,
        "created_at": iso(prompt.created_at),
        "updated_at": iso(prompt.updated_at),
        "deleted": prompt.deleted,
        "is_latest": prompt.is_latest,
        "latest_version": summary.latest_version if summary else prompt.version,
        "version_count": summary.version_count if summary else 1,
        "first_version_created_at": iso(summary.first_version_created_at if summary else prompt.created_at),
    }


async def prompt_out(session: AsyncSession, prompt: LLMPrompt) -> dict[str, Any]:
    """LLMPromptSerializer: the public shape plus `created_by`, in upstream's field order."""
    return (await prompts_out(session, [prompt]))[0]


async def prompts_out(session: AsyncSession, prompts: Sequence[LLMPrompt]) -> list[dict[str, Any]]:
    """A page of prompts: creators and version summaries in one query each."""
    await accounts.preload_users(session, [prompt.created_by_id for prompt in prompts])
    team_ids = {prompt.team_id for prompt in prompts}
    summaries = (
        await queries.version_summaries(session, team_ids.pop(), [p.name for p in prompts])
        if len(team_ids) == 1
        else {}
    )
    out = []
    for prompt in prompts:
        creator = await accounts.user_by_id(session, prompt.created_by_id) if prompt.created_by_id else None
        public = public_shape(prompt, summaries.get(prompt.name))
        head = {key: public[key] for key in ("id", "name", "prompt", "version")}
        out.append(head | {"created_by": user_basic(creator)} | public)
    return out


async def create_prompt(session: AsyncSession, ctx: ProjectContext, body: dict[str, Any]) -> LLMPrompt:
    name = validate_prompt_name(_required(body, "name"))
    payload = validate_prompt_payload(_required(body, "prompt"))
    if await queries.latest_version(session, ctx.project_id, name) is not None:
        raise _name_taken()
    now = utcnow()
    prompt = LLMPrompt(
        id=str(uuid.uuid4()),
        team_id=ctx.project_id,
        name=name,
        prompt=payload,
        version=1,
        is_latest=True,
        created_by_id=ctx.principal.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(prompt)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise _name_taken() from None  # a concurrent create of the same name won the index
    return prompt


async def publish_version(
    session: AsyncSession, ctx: ProjectContext, name: str, body: dict[str, Any]
) -> LLMPrompt:
    """A new version on top of `base_version`, which must still be the latest (optimistic lock)."""
    payload = validate_prompt_payload(_required(body, "prompt"))
    base_version = validate_base_version(_required(body, "base_version"))
    latest = await queries.latest_version(session, ctx.project_id, name)
    if latest is None:
        raise not_found(name)
    if latest.version != base_version:
        raise RawError(409, {"detail": MSG_CONFLICT, "current_version": latest.version})
    now = utcnow()
    latest.is_latest = False
    latest.updated_at = now
    published = LLMPrompt(
        id=str(uuid.uuid4()),
        team_id=ctx.project_id,
        name=name,
        prompt=payload,
        version=base_version + 1,
        is_latest=True,
        created_by_id=ctx.principal.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add_all([latest, published])
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()  # another publish took this version number first
        current = await queries.latest_version(session, ctx.project_id, name)
        raise RawError(
            409, {"detail": MSG_CONFLICT, "current_version": current.version if current else None}
        ) from None
    return published
