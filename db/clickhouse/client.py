"""The connection to ClickHouse: the official `clickhouse-connect` client, over HTTP or in process.

`CLICKHOUSE_URL` is `http(s)://user:password@host:port` for a server, or `chdb:///path` for chdb,
ClickHouse's engine embedded in this process (the tests and the benchmark use it; clickhouse-connect
drives both through the same `Client` interface). Flagship uses three calls only — `command`,
`raw_query` and `raw_insert` — each with complete SQL text, so every statement the tests run through
chdb is the one a server receives. The HTTP transport itself (authentication, compression,
retries, connection pooling) is exercised only against a real server.

The client is created on first use, so a process starts (and `/_health` can say "unavailable")
while ClickHouse is down. Calls block; the async wrappers run them in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson

T = TypeVar("T")
TABLE = "events"


class EventsUnavailable(Exception):
    """ClickHouse cannot be reached (or refused the connection): a 503 for the caller, not a 500."""


def _redacted(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


class ClickHouse:
    """One ClickHouse server (or embedded engine) and the database Flagship's tables live in."""

    def __init__(self, url: str, database: str) -> None:
        if not database.replace("_", "").isalnum():
            raise ValueError(f"CLICKHOUSE_DATABASE must be letters, digits and _: {database!r}")
        self.url, self.database = url, database
        self.embedded = url.startswith("chdb:")
        self._client: Any = None
        self._lock = threading.Lock()
        # chdb's handle serves one statement at a time; a server takes them concurrently.
        self._serial: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self.embedded else contextlib.nullcontext()
        )

    def __repr__(self) -> str:
        return f"ClickHouse({_redacted(self.url)!r}, {self.database!r})"

    @property
    def table(self) -> str:
        return f"{self.database}.{TABLE}"

    def _connected(self) -> Any:
        with self._lock:
            if self._client is None:
                import clickhouse_connect  # only processes configured for ClickHouse load the driver

                try:
                    self._client = clickhouse_connect.get_client(dsn=self.url)
                except Exception as exc:
                    raise _unavailable(exc) from None
            return self._client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        client = self._connected()
        try:
            with self._serial:
                return getattr(client, method)(*args, **kwargs)
        except Exception as exc:
            error = _unavailable(exc)
            if error is exc:
                raise
            raise error from exc

    def command(self, statement: str) -> None:
        self._call("command", statement)

    def rows(self, query: str) -> list[list[Any]]:
        """The result rows (JSONCompactEachRow: exact Int64 and Float64 values, parsed by orjson)."""
        body: bytes = self._call("raw_query", query, fmt="JSONCompactEachRow")
        return [orjson.loads(line) for line in body.splitlines() if line]

    def insert(self, columns: Sequence[str], ndjson: bytes, table: str = TABLE) -> None:
        """Append rows given as JSON lines (`INSERT INTO … (columns) FORMAT JSONEachRow`)."""
        self._call(
            "raw_insert", f"{self.database}.{table}", list(columns), insert_block=ndjson, fmt="JSONEachRow"
        )

    def ping(self) -> bool:
        return bool(self._call("ping"))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)


def _unavailable(exc: Exception) -> Exception:
    """Connection failures become `EventsUnavailable`; errors the server reports stay as they are."""
    from clickhouse_connect.driver.exceptions import OperationalError

    if isinstance(exc, OperationalError | OSError):
        return EventsUnavailable(f"ClickHouse is unavailable ({type(exc).__name__})")
    return exc
