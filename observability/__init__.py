"""Operators' view of Flagship: metrics, correlated logs and traces (README "Operating Flagship").

Outside the layers (`api -> workflows -> activities -> db -> domain`): every layer may use it, it
imports none of them. Workflow code must not call it (no side effects in workflows).

- `context`: the per-request (or per-activity) ids every log line carries.
- `logs`: one place configuring logging (JSON lines, or text on a terminal; secrets redacted).
- `metrics`: the Prometheus metrics and the helpers that record them.
- `http`: the ASGI middleware giving every request its id, access log line and metrics.
- `tracing`: OpenTelemetry, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
- `worker`: the worker's activity interceptor and its metrics endpoint.
"""
