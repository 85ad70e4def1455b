"""Routers that accept every path with and without a trailing slash, as PostHog does.

SDKs disagree about the slash and a redirect would drop POST bodies in some clients, so both
spellings are real routes; only the slashed one appears in the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter


class FlexRouter(APIRouter):
    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().add_api_route(path, endpoint, **kwargs)
        alternate = path[:-1] if path.endswith("/") else path + "/"
        if alternate and alternate != path:
            kwargs = dict(kwargs, include_in_schema=False)
            kwargs.pop("operation_id", None)
            super().add_api_route(alternate, endpoint, **kwargs)
