"""The one place logging is configured: API (`python -m api`), worker (`python worker.py`), `run.py`.

Output is one JSON object per line on stdout (plain text when stdout is a terminal; LOG_FORMAT
overrides), at LOG_LEVEL. Every line carries the ids of the request or activity it belongs to
(`request_id`, `project_id`, `experiment_id`, `workflow_id`), and, with tracing on, its
`trace_id`, so a REST call, its workflow update and its activity are found with one search.

Secrets never leave the process: API keys and tokens (`phx_`, `phs_`, `phc_`), bearer credentials,
`api_key=`/`token=`/`password=` values and URL passwords are redacted, both in the record (a
filter) and in the finished line (the formatters), which covers tracebacks and extra fields too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from observability.context import CURRENT, FIELDS
from settings import Settings, load_settings

_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(ph[cxs])_[A-Za-z0-9]+"), r"\1_[REDACTED]"),
    # Credentials after an HTTP auth scheme (as in the header: "Bearer …", "Basic …").
    (re.compile(r"\b([Bb]earer|Basic)\s+[^\s\"',;}]{8,}"), r"\1 [REDACTED]"),
    (
        re.compile(
            r"(?i)\b((?:authorization|api_key|apikey|token|secret|password|passwd)[\"']?\s*[:=]\s*[\"']?)"
            r"(?!\[REDACTED\]|bearer |basic )[^\s\"'&,;}]+"
        ),
        r"\1[REDACTED]",
    ),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1[REDACTED]@"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the record's message without secrets (other handlers then see it redacted too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


# Set by observability.tracing while tracing is on: the current (trace_id, span_id), or None.
trace_ids: Callable[[], tuple[str, str] | None] | None = None


class ContextFilter(logging.Filter):
    """Stamps the current request's or activity's ids on the record (explicit extras win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = CURRENT.get()
        if ctx is not None:
            for name in FIELDS:
                value = getattr(ctx, name)
                if value is not None and not hasattr(record, name):
                    setattr(record, name, value)
        ids = trace_ids() if trace_ids is not None else None
        if ids is not None and not hasattr(record, "trace_id"):
            record.trace_id, record.span_id = ids
        return True


_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return redact(orjson.dumps(line, default=str).decode())


class TextFormatter(logging.Formatter):
    """For a person at a terminal: the message first, the ids after it."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        if extras:
            head, sep, tail = text.partition("\n")
            text = f"{head}  [{extras}]{sep}{tail}"
        return redact(text)


def build_handler(stream: TextIO, *, json_lines: bool) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    return handler


def _wants_json(log_format: str, stream: TextIO) -> bool:
    if log_format in ("json", "text"):
        return log_format == "json"
    isatty = getattr(stream, "isatty", None)
    return not (isatty is not None and isatty())


def configure_logging(settings: Settings | None = None, stream: TextIO | None = None) -> logging.Handler:
    """Idempotent: replaces the handler an earlier call installed."""
    settings = settings or load_settings()
    stream = stream or sys.stdout
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_flagship", False)]:
        root.removeHandler(old)
    handler = build_handler(stream, json_lines=_wants_json(settings.log_format, stream))
    handler._flagship = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level if settings.log_level in logging.getLevelNamesMapping() else "INFO")
    return handler
