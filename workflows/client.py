"""The single Temporal client factory: the pydantic data converter everywhere (temporal-notes §5)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from observability.tracing import temporal_plugins
from workflows.search_attributes import ALL_KEYS


async def connect(
    address: str, namespace: str, *, lazy: bool = False, runtime: Runtime | None = None
) -> Client:
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
        runtime=runtime,
        # OpenTelemetry when OTEL_EXPORTER_OTLP_ENDPOINT is set; none at all otherwise.
        plugins=temporal_plugins(),
    )


async def connect_with_retry(
    address: str, namespace: str, *, attempts: int = 30, runtime: Runtime | None = None
) -> Client:
    """Bounded exponential backoff, as PostHog's worker does: the server may still be starting."""
    delay = 0.2
    for attempt in range(attempts):
        try:
            return await connect(address, namespace, runtime=runtime)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


async def ensure_namespace(client: Client, namespace: str) -> None:
    try:
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=_days(3))
        )
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register our search attributes (production and pre-existing servers); idempotent."""
    listing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
        for key in ALL_KEYS
        if key.name not in listing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )


def _days(n: int) -> Duration:
    return Duration(seconds=int(timedelta(days=n).total_seconds()))
