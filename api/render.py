"""Shared output conventions: PostHog's datetime format and pagination envelope."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from api.errors import ApiError

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def iso(value: datetime | None) -> str | None:
    """`2024-02-10T00:00:00Z`, fractional seconds only when non-zero (reference §13)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def page_params(request: Request) -> tuple[int, int]:
    """limit/offset as DRF's LimitOffsetPagination reads them (bad values fall back to defaults)."""
    limit = _non_negative(request.query_params.get("limit"), DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE
    offset = _non_negative(request.query_params.get("offset"), 0)
    return min(limit, MAX_PAGE_SIZE), offset


def _non_negative(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value >= 0 else default


def paginated(
    request: Request, count: int, results: Sequence[Any], limit: int, offset: int
) -> dict[str, Any]:
    def link(new_offset: int) -> str:
        params = dict(request.query_params)
        params["limit"] = str(limit)
        if new_offset:
            params["offset"] = str(new_offset)
        else:
            params.pop("offset", None)
        return str(request.url.replace_query_params(**params))

    next_url = link(offset + limit) if offset + limit < count else None
    previous_url = link(max(offset - limit, 0)) if offset > 0 else None
    return {"count": count, "next": next_url, "previous": previous_url, "results": list(results)}


def parse_bool_param(raw: str | None) -> bool | None:
    if raw is None:
        return None
    return raw.lower() in ("true", "1", "yes")


def bad_request(detail: str, attr: str | None = None, code: str = "invalid_input") -> ApiError:
    return ApiError(400, "validation_error", code, detail, attr)
