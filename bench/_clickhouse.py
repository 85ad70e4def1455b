"""The ClickHouse half of `bench/timeseries.py --backend clickhouse`.

The generated events go into ClickHouse's engine in this process (chdb, through the backend's own
client and table), merged as a server's background merges would leave them; then each metric's
14-day series is computed by both engines through `db.metric_analysis` (the code the backfill runs),
timed, and measured with tracemalloc in a second run: Python's allocations are Flagship's memory,
while chdb's engine allocates outside Python's allocator (that memory is the store's).
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from db.clickhouse.client import ClickHouse
from db.clickhouse.schema import EVENT_COLUMNS, migrate
from db.clickhouse.store import ClickHouseEvents

CHUNK_ROWS = 500_000
MB = 1024 * 1024


def load(
    path: Path, team_id: int, rows: Sequence[tuple[Any, ...]], stamps: Sequence[str]
) -> ClickHouseEvents:
    """`rows` as bench/timeseries.py generates them (event, user, µs, properties JSON), in order."""
    ch = ClickHouse(f"chdb://{path}", "bench")
    migrate(ch)
    created = "2026-01-01 00:00:00.000000"
    for start in range(0, len(rows), CHUNK_ROWS):
        lines = [
            orjson.dumps(
                {
                    "uuid": f"00000000-0000-4000-8000-{i:012d}",
                    "team_id": team_id,
                    "event": rows[i][0],
                    "distinct_id": f"user-{rows[i][1]}",
                    "timestamp": stamps[i],
                    "properties": rows[i][3],
                    "created_at": created,
                    "seq": i + 1,
                }
            )
            for i in range(start, min(start + CHUNK_ROWS, len(rows)))
        ]
        ch.insert(EVENT_COLUMNS, b"\n".join(lines) + b"\n")
    ch.command(f"OPTIMIZE TABLE {ch.table} FINAL")
    return ClickHouseEvents(ch)


def measure(run: Callable[[], Any]) -> tuple[Any, float, float]:
    """(value, seconds of an untraced run, tracemalloc peak MB of a second, traced run)."""
    started = time.perf_counter()
    value = run()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    try:
        run()
        peak = tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()
    return value, seconds, peak


def compare(
    name: str,
    analyse: Callable[[ClickHouseEvents | None], Any],
    events: ClickHouseEvents,
    agree: Callable[[Any, Any], bool],
    *,
    embedded_too: bool = True,
) -> None:
    """Both engines on the same series, one line of figures (`embedded_too=False`: ClickHouse's
    figures alone, for sizes where the embedded engine takes many minutes)."""
    clickhouse, clickhouse_s, clickhouse_mb = measure(lambda: asyncio.run(analyse(events)))
    ours = f"clickhouse (chdb) {clickhouse_s:6.2f} s, peak {clickhouse_mb:6.1f} MB"
    if not embedded_too:
        print(f"{name:<12} {ours} | embedded engine not run (--clickhouse-only)")
        return
    embedded, embedded_s, embedded_mb = measure(lambda: asyncio.run(analyse(None)))
    print(
        f"{name:<12} embedded {embedded_s:6.2f} s, peak {embedded_mb:8.1f} MB | {ours} | "
        f"every day agrees: {agree(embedded, clickhouse)}"
    )
