"""An httpx client bound to the app in-process (ASGI transport, same event loop as the worker)."""

from __future__ import annotations

from typing import Any

import httpx


class ApiClient:
    def __init__(self, client: httpx.AsyncClient, key: str, project_id: int) -> None:
        self.http = client
        self.key = key
        self.project_id = project_id

    def _headers(self, key: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return headers | (extra or {})

    async def get(self, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, headers=self._headers(key, kwargs.pop("headers", None)), **kwargs)

    async def post(
        self, path: str, json: Any = None, *, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        return await self.http.post(
            path, json=json, headers=self._headers(key, kwargs.pop("headers", None)), **kwargs
        )

    async def patch(
        self, path: str, json: Any = None, *, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        return await self.http.patch(
            path, json=json, headers=self._headers(key, kwargs.pop("headers", None)), **kwargs
        )

    async def delete(self, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
        return await self.http.delete(path, headers=self._headers(key, kwargs.pop("headers", None)), **kwargs)

    def project(self, path: str) -> str:
        return f"/api/projects/{self.project_id}/{path.lstrip('/')}"
