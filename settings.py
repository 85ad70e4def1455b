"""Runtime settings, read once from the environment (design.md §4).

Every process (the `make run` supervisor, the API, the worker, migrations) reads the same variables,
so docker-compose and the local run are configured identically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

# The variables this module reads; docker-compose's test checks it passes only these.
ENVIRONMENT_VARIABLES = (
    "HOST",
    "PORT",
    "DATA_DIR",
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_DEV_PORT",
    "TEMPORAL_UI_PORT",
    "TEMPORAL_UI_URL",
    "TEMPORAL_NAMESPACE",
    "BOOTSTRAP_PERSONAL_API_KEY",
    "BOOTSTRAP_PROJECT_API_TOKEN",
    "WEB_CONCURRENCY",
    "TEMPORAL_TASK_QUEUE",
    "TEMPORAL_RPC_TIMEOUT_SECONDS",
    "CAPTURE_QUEUE_MAX_EVENTS",
    "QUERY_CONCURRENCY",
    "QUERY_TIMEOUT_SECONDS",
    # Observability (README "Operating Flagship").
    "FLAGSHIP_METRICS",
    "WORKER_METRICS_PORT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    # Events backend (README "Events in ClickHouse").
    "EVENTS_BACKEND",
    "CLICKHOUSE_URL",
    "CLICKHOUSE_DATABASE",
    "CLICKHOUSE_TTL_DAYS",
)
EVENTS_BACKENDS = ("sql", "clickhouse")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path(".data")
    database_url: str = ""
    temporal_address: str | None = None
    temporal_dev_port: int = 7233
    temporal_ui_port: int = 8233
    # Where the web console links each experiment's workflow; `make run` sets the embedded UI's address.
    temporal_ui_url: str | None = None
    temporal_namespace: str = "default"
    bootstrap_personal_api_key: str | None = None
    bootstrap_project_api_token: str | None = None
    web_concurrency: int = 1
    task_queue: str = "flagship"
    # Bound on every Temporal RPC made on behalf of an HTTP request: past it the caller gets a 503
    # instead of hanging while no worker polls (temporal-notes §1.4).
    temporal_rpc_timeout_seconds: float = 10.0
    # Events an API process holds in memory waiting for their commit; past it capture answers 503
    # (the SDKs retry 5xx) instead of queueing without limit.
    capture_queue_max_events: int = 100_000
    # `POST …/query/` analyses an API process runs at once (one more: 429), and how long one may run
    # (then 503): each loads the matching events and runs the engine over them.
    query_concurrency: int = 2
    query_timeout_seconds: float = 60.0
    # FLAGSHIP_METRICS=0 turns Prometheus metrics off (no /metrics, nothing recorded per request).
    metrics_enabled: bool = True
    # The worker serves its metrics (and the Temporal SDK's) on this port; unset: not served.
    worker_metrics_port: int | None = None
    # Set: traces go to this OTLP/HTTP collector; unset: tracing is off and costs nothing.
    otel_exporter_otlp_endpoint: str | None = None
    log_level: str = "INFO"
    log_format: str = "auto"  # json | text | auto (text on a terminal, JSON lines otherwise)
    # Where captured events go and where results are computed: `sql` (the database above, the
    # embedded engine) or `clickhouse` (CLICKHOUSE_URL; results computed in ClickHouse SQL).
    events_backend: str = "sql"
    clickhouse_url: str | None = None  # http(s)://user:password@host:8123, or chdb:///path (tests)
    clickhouse_database: str = "flagship"
    # Set: events older than this many days are dropped by ClickHouse's TTL; unset: kept forever.
    clickhouse_ttl_days: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def temporal_target(self) -> str:
        """The server to talk to: the configured one, else the embedded dev server's port."""
        return self.temporal_address or f"127.0.0.1:{self.temporal_dev_port}"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'flagship.db').resolve()}"


def _switch(value: str | None, *, default: bool) -> bool:
    if not value:
        return default
    return value.strip().lower() not in ("0", "false", "off", "no")


def _events_backend(env: Mapping[str, str]) -> str:
    backend = (env.get("EVENTS_BACKEND") or "sql").strip().lower()
    if backend not in EVENTS_BACKENDS:
        raise ValueError(f"EVENTS_BACKEND must be one of {', '.join(EVENTS_BACKENDS)}, not {backend!r}")
    if backend == "clickhouse" and not env.get("CLICKHOUSE_URL"):
        raise ValueError("EVENTS_BACKEND=clickhouse needs CLICKHOUSE_URL (http://user:password@host:8123)")
    return backend


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("DATA_DIR") or ".data")
    return Settings(
        host=env.get("HOST") or "127.0.0.1",
        port=int(env.get("PORT") or 8000),
        data_dir=data_dir,
        database_url=env.get("DATABASE_URL") or default_database_url(data_dir),
        temporal_address=env.get("TEMPORAL_ADDRESS") or None,
        temporal_dev_port=int(env.get("TEMPORAL_DEV_PORT") or 7233),
        temporal_ui_port=int(env.get("TEMPORAL_UI_PORT") or 8233),
        temporal_ui_url=(env.get("TEMPORAL_UI_URL") or "").rstrip("/") or None,
        temporal_namespace=env.get("TEMPORAL_NAMESPACE") or "default",
        bootstrap_personal_api_key=env.get("BOOTSTRAP_PERSONAL_API_KEY") or None,
        bootstrap_project_api_token=env.get("BOOTSTRAP_PROJECT_API_TOKEN") or None,
        web_concurrency=int(env.get("WEB_CONCURRENCY") or 1),
        task_queue=env.get("TEMPORAL_TASK_QUEUE") or "flagship",
        temporal_rpc_timeout_seconds=float(env.get("TEMPORAL_RPC_TIMEOUT_SECONDS") or 10.0),
        capture_queue_max_events=int(env.get("CAPTURE_QUEUE_MAX_EVENTS") or 100_000),
        query_concurrency=int(env.get("QUERY_CONCURRENCY") or 2),
        query_timeout_seconds=float(env.get("QUERY_TIMEOUT_SECONDS") or 60.0),
        metrics_enabled=_switch(env.get("FLAGSHIP_METRICS"), default=True),
        worker_metrics_port=int(env["WORKER_METRICS_PORT"]) if env.get("WORKER_METRICS_PORT") else None,
        otel_exporter_otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
        log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        log_format=(env.get("LOG_FORMAT") or "auto").lower(),
        events_backend=_events_backend(env),
        clickhouse_url=env.get("CLICKHOUSE_URL") or None,
        clickhouse_database=env.get("CLICKHOUSE_DATABASE") or "flagship",
        clickhouse_ttl_days=int(env["CLICKHOUSE_TTL_DAYS"]) if env.get("CLICKHOUSE_TTL_DAYS") else None,
    )
