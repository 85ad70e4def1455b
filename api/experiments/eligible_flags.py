"""`eligible_feature_flags/` (reference §4.10): flags that can back an experiment, filtered and paged."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import RawError
from api.flag_render import render_flags
from api.render import bad_request
from db.eligible_flags import FlagFilters, candidate_flags
from domain.flag_eligibility import (
    ELIGIBLE_ORDER_FIELDS,
    InvalidPaging,
    has_contexts_wanted,
    is_eligible_flag,
    paging,
)


def _filters(request: Request) -> FlagFilters:
    params = request.query_params
    order = params.get("order") or "-created_at"
    if order not in ELIGIBLE_ORDER_FIELDS:
        raise bad_request(f"Invalid order field: '{order}'")
    created_by = params.get("created_by_id")
    return FlagFilters(
        search=params.get("search"),
        active=params["active"].lower() == "true" if "active" in params else None,
        # A creator id that is not a number matches nobody (upstream would fail on it).
        created_by_id=(int(created_by) if created_by.isdigit() else -1) if created_by else None,
        evaluation_runtime=params.get("evaluation_runtime"),
        order=order,
    )


async def eligible_flags(session: AsyncSession, team_id: int, request: Request) -> dict[str, Any]:
    try:
        limit, offset = paging(request.query_params.get("limit"), request.query_params.get("offset"))
    except InvalidPaging as err:
        raise RawError(400, {"error": str(err)}) from None
    filters = _filters(request)
    flags = [
        flag for flag in await candidate_flags(session, team_id, filters) if is_eligible_flag(flag.filters)
    ]
    contexts = request.query_params.get("has_evaluation_contexts")
    if contexts is not None:
        wanted = has_contexts_wanted(contexts)
        flags = [flag for flag in flags if bool(flag.evaluation_tags) == wanted]
    page = flags[offset : offset + limit]
    return {"results": await render_flags(session, page), "count": len(flags)}
