"""Flagship's ClickHouse tables, created and migrated by `python -m db upgrade` (EVENTS_BACKEND=clickhouse).

`events` is a ReplacingMergeTree:
- partitioned by month of `timestamp` (retention drops whole parts; queries prune months);
- ordered by `(team_id, event, toDate(timestamp), uuid)`: an analysis reads one project's events of a
  few names over a date range, which is a few ranges of the primary key;
- deduplicating retries of one event: rows with the same sorting key (same project, event name, day
  and uuid) collapse on merges, keeping the first captured (`first_seq`, the highest for the lowest
  `seq`), and every analysis reads `FINAL`, so a duplicate not merged yet never counts twice;
- `seq` is the capture order, the tie-break of equal timestamps (the SQL backend's row id);
- optional TTL (`CLICKHOUSE_TTL_DAYS`): rows older than that many days are deleted on merges.

Migrations are numbered statements recorded in `schema_migrations`; the TTL is re-applied on every
run so changing the variable and re-running the command changes the retention.
"""

from __future__ import annotations

import re

from db.clickhouse.client import TABLE, ClickHouse

EVENT_COLUMNS = ("uuid", "team_id", "event", "distinct_id", "timestamp", "properties", "created_at", "seq")

_EVENTS = """
CREATE TABLE IF NOT EXISTS {database}.{table}
(
    uuid UUID,
    team_id Int64,
    event LowCardinality(String),
    distinct_id String,
    timestamp DateTime64(6, 'UTC'),
    properties String CODEC(ZSTD(3)),
    created_at DateTime64(6, 'UTC'),
    seq UInt64,
    first_seq UInt64 MATERIALIZED bitNot(seq)
)
ENGINE = ReplacingMergeTree(first_seq)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (team_id, event, toDate(timestamp), uuid)
"""

MIGRATIONS: tuple[tuple[int, str, str], ...] = ((1, "events table", _EVENTS),)


def _ttl_clause(days: int) -> str:
    return f"toDateTime(timestamp) + toIntervalDay({int(days)})"


def current_ttl(ch: ClickHouse) -> int | None:
    """The table's TTL in days, as ClickHouse reports it (None: no TTL)."""
    rows = ch.rows(
        f"SELECT engine_full FROM system.tables WHERE database = '{ch.database}' AND name = '{TABLE}'"
    )
    found = re.search(r"TTL toDateTime\(timestamp\) \+ toIntervalDay\((\d+)\)", rows[0][0]) if rows else None
    return int(found.group(1)) if found else None


def apply_retention(ch: ClickHouse, ttl_days: int | None) -> None:
    """Set, change or remove the TTL; nothing when it already is what is asked (ALTER rewrites parts)."""
    if ttl_days is not None and ttl_days < 1:
        raise ValueError("CLICKHOUSE_TTL_DAYS must be a positive number of days")
    current = current_ttl(ch)
    if current == ttl_days:
        return
    if ttl_days is None:
        ch.command(f"ALTER TABLE {ch.table} REMOVE TTL")
    else:
        ch.command(f"ALTER TABLE {ch.table} MODIFY TTL {_ttl_clause(ttl_days)}")


def migrate(ch: ClickHouse, ttl_days: int | None = None) -> list[str]:
    """Create the database and apply pending migrations; returns the names applied now."""
    ch.command(f"CREATE DATABASE IF NOT EXISTS {ch.database}")
    ch.command(
        f"CREATE TABLE IF NOT EXISTS {ch.database}.schema_migrations (version UInt32, name String, "
        "applied_at DateTime64(6, 'UTC') DEFAULT now64(6)) ENGINE = MergeTree ORDER BY version"
    )
    done = {int(row[0]) for row in ch.rows(f"SELECT version FROM {ch.database}.schema_migrations")}
    applied = []
    for version, name, statement in MIGRATIONS:
        if version in done:
            continue
        ch.command(statement.format(database=ch.database, table=TABLE))
        ch.command(
            f"INSERT INTO {ch.database}.schema_migrations (version, name) VALUES ({version}, '{name}')"
        )
        applied.append(name)
    apply_retention(ch, ttl_days)
    return applied
