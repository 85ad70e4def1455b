"""The API's handle on Temporal: one lazily connected client per process, bounded RPCs.

Connecting lazily keeps the API serving GETs from SQL when Temporal is down (design.md §1); any
write then fails with 503 within `temporal_rpc_timeout_seconds` instead of hanging.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import Client

from api.errors import service_unavailable
from observability.temporal_metrics import api_client_runtime
from settings import Settings
from workflows.client import connect


class TemporalConnection:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    @property
    def rpc_timeout(self) -> timedelta:
        return timedelta(seconds=self.settings.temporal_rpc_timeout_seconds)

    @property
    def admission_window(self) -> timedelta:
        """How long after sending an update the workflow may still start applying it. The API
        waits the whole RPC timeout for the answer; the rest covers one lifecycle activity."""
        seconds = self.settings.temporal_rpc_timeout_seconds
        return timedelta(seconds=max(seconds - 2.0, seconds / 2))

    @property
    def task_queue(self) -> str:
        return self.settings.task_queue

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    async with asyncio.timeout(self.settings.temporal_rpc_timeout_seconds):
                        self._client = await connect(
                            self.settings.temporal_target,
                            self.settings.temporal_namespace,
                            runtime=api_client_runtime(self.settings.metrics_enabled),
                        )
                except (TimeoutError, RuntimeError) as exc:
                    raise service_unavailable(
                        f"Temporal is unreachable at {self.settings.temporal_target}. Try again shortly."
                    ) from exc
            return self._client
