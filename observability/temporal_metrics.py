"""The Temporal SDK's own metrics (`temporal_request_*`, `temporal_workflow_task_*`, ...) in our
Prometheus exposition.

The SDK's Runtime exports Prometheus on a loopback port of its own; a collector re-exposes what it
serves at each scrape, so operators scrape one target per process: the worker's
WORKER_METRICS_PORT, the API's `/metrics` (client metrics: the RPCs the API makes). One Runtime
per process, created on first use: a Runtime is a set of Rust threads, and a second collector
would repeat every metric family.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
from collections.abc import Iterator

from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from observability.hot import MULTIPROC_ENV

log = logging.getLogger("flagship.metrics")


class TemporalSdkMetrics(Collector):
    """Re-exposes what the SDK Runtime's own Prometheus endpoint serves, at scrape time."""

    def __init__(self, url: str) -> None:
        self.url = url

    def describe(self) -> list[Metric]:
        return []  # names come from the SDK and vary; no duplicate check against them

    def collect(self) -> Iterator[Metric]:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:  # our own loopback endpoint
                text = response.read().decode()
        except OSError as error:
            log.warning("Temporal SDK metrics unavailable: %s", error)
            return
        yield from text_string_to_metric_families(text)


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Shared:
    runtime: Runtime | None = None


def sdk_metrics_runtime() -> Runtime:
    """The process's Runtime exporting SDK metrics, registered with our registry (once)."""
    if _Shared.runtime is None:
        sdk_address = f"127.0.0.1:{_free_loopback_port()}"
        _Shared.runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=sdk_address,
                    counters_total_suffix=True,
                    unit_suffix=True,
                    durations_as_seconds=True,
                )
            )
        )
        REGISTRY.register(TemporalSdkMetrics(f"http://{sdk_address}/metrics"))
    return _Shared.runtime


def api_client_runtime(metrics_enabled: bool) -> Runtime | None:
    """The Runtime for the API's Temporal client: SDK metrics in `/metrics` when metrics are on.

    Not with several API processes (prometheus_client's multiprocess mode): `/metrics` then answers
    from shared files for all processes, and one process's SDK counters would pass for everyone's.
    """
    if not metrics_enabled or os.environ.get(MULTIPROC_ENV):
        return None
    return sdk_metrics_runtime()
