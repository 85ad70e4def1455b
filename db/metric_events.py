"""Loading the events an analysis needs: ONE query per analysis, whatever the number of days.

    SELECT e, d, t, p0, … FROM (
        SELECT <event code>, distinct_id, timestamp, id, NULL …          -- events reading no property
          FROM event WHERE team_id = ? AND timestamp >= ? AND timestamp < ? AND event IN (…)
        UNION ALL
        SELECT <event code>, distinct_id, timestamp, id, <JSON texts> …  -- events reading properties
          FROM event WHERE … AND event IN (…)
    ) ORDER BY t, i

Both branches range-scan `(team_id, event, timestamp, distinct_id)`; the first never touches the
table (index-only), which on SQLite is 10x cheaper than a row lookup per event. Only what the engine
reads leaves the database, in the cheapest Python shape (measured on 1M events, bench/timeseries.py):

- the event name comes back as a small integer (`CASE event WHEN … THEN 0 …`): CPython caches small
  ints, so no object is allocated per row;
- SQLite's timestamp comes back as its stored text, parsed by numpy (15x faster than `strftime`
  in SQL, whose whole seconds also round .9999 up); PostgreSQL's as exact µs (`EXTRACT(EPOCH …)`),
  sparing psycopg a datetime per row;
- each property is extracted as JSON text (`properties -> '$."key"'` on SQLite 3.38+,
  `properties -> key` cast to text on PostgreSQL): NULL when absent, typed (`"5"` vs `5`) so
  filters see what was sent, and only on rows of the events that read it. Texts are decoded once
  per distinct value.

Rows come straight from the driver's cursor (aiosqlite / psycopg server-side) in chunks:
SQLAlchemy's `Row` layer costs more per row than the query. Each chunk is split into columns in a
thread while the driver fetches the next one (SQLite and libpq release the GIL while they work).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.metric_engine import EventColumns, Needs, from_micros
from domain.metric_engine.columns import ColumnsBuilder

CHUNK_ROWS = 50_000
_POSTGRES_MICROS = "CAST(EXTRACT(EPOCH FROM timestamp) * 1000000 AS BIGINT)"
_OUTER_FIRST_PROPERTY = 3  # result layout: event code, distinct_id, timestamp, properties…


class _Sql:
    """Accumulates SQL text and its positional parameters in the driver's placeholder style."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"
        self.params: list[Any] = []
        self.whole: dict[int, str] = {}  # result column -> key extracted in Python

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "%s" if self.postgres else "?"

    def instant(self, micros: int) -> Any:
        """A bound for `timestamp`: SQLite compares SQLAlchemy's DATETIME text (UTC, µs) as text."""
        moment = from_micros(micros)
        return moment if self.postgres else f"{moment:%Y-%m-%d %H:%M:%S.%f}"

    def names(self, names: Sequence[str]) -> str:
        return "(" + ", ".join(self.bind(n) for n in names) + ")"

    def property(self, key: str, column: int) -> str:
        if self.postgres:
            return f"CAST(properties -> {self.bind(key)} AS TEXT)"
        if '"' in key:  # SQLite 3.40's JSON paths cannot address it: split this one in Python
            self.whole[column] = key
            return "properties"
        # The path is bound, never spliced; inside double quotes any other key is one label.
        path = '$."' + key.replace("\\", "\\\\") + '"'
        return f"properties -> {self.bind(path)}"


def _extract_whole(rows: Sequence[Any], whole: dict[int, str]) -> list[tuple[Any, ...]]:
    out = []
    for row in rows:
        values = list(row)
        for column, key in whole.items():
            if values[column] is not None:
                props = orjson.loads(values[column])
                values[column] = orjson.dumps(props[key]).decode() if key in props else None
        out.append(tuple(values))
    return out


def _property_columns(sql: _Sql, needs: Needs, keys: Sequence[str], names: Sequence[str] | None) -> list[str]:
    """Each key's JSON text, guarded to the events that read it when others share the branch."""
    columns: list[str] = []
    for key in keys:
        scope = needs.properties[key]
        # Placeholders are positional: bind in the order they appear in the text.
        if scope is not None and (names is None or set(scope) < set(names)):
            guard = f"CASE WHEN event IN {sql.names(sorted(scope))} THEN "
            columns.append(guard + sql.property(key, _OUTER_FIRST_PROPERTY + len(columns)) + " END")
        else:
            columns.append(sql.property(key, _OUTER_FIRST_PROPERTY + len(columns)))
    return columns


def _branch(
    sql: _Sql,
    team_id: int,
    bounds: tuple[int, int],
    all_names: Sequence[str] | None,
    names: Sequence[str] | None,
    properties: Callable[[_Sql], list[str]],
) -> str:
    """One SELECT of the union (`properties` binds its columns when their turn in the text comes)."""
    if all_names is not None:
        event = (
            "CASE event " + " ".join(f"WHEN {sql.bind(n)} THEN {i}" for i, n in enumerate(all_names)) + " END"
        )
    else:
        event = "event"
    # SQLite hands back its DATETIME text (numpy parses it ~15x faster than strftime() in SQL);
    # PostgreSQL the exact µs, sparing psycopg a datetime object per row.
    stamp = _POSTGRES_MICROS if sql.postgres else "timestamp"
    values = [event, "distinct_id", stamp, "id", *properties(sql)]
    aliases = ["e", "d", "t", "i", *(f"p{k}" for k in range(len(values) - 4))]
    columns = [f"{value} AS {alias}" for value, alias in zip(values, aliases, strict=True)]
    where = f"team_id = {sql.bind(team_id)} AND timestamp >= {sql.bind(sql.instant(bounds[0]))}"
    where += f" AND timestamp < {sql.bind(sql.instant(bounds[1]))}"
    if names is not None:
        where += f" AND event IN {sql.names(names)}"
    return f"SELECT {', '.join(columns)} FROM event WHERE {where}"


def statement(
    dialect: str, team_id: int, needs: Needs, keys: Sequence[str], start: int, until: int
) -> tuple[str, _Sql]:
    """The one query, with positional parameters in the driver's style.

    With the event names known, it is a UNION ALL of an index-only branch (events that read no
    property: no table access at all) and a branch for the events that read properties.
    """
    sql = _Sql(dialect)
    names = sorted(needs.events) if needs.events is not None else None
    bounds = (start, until)
    readers = _readers(needs, names)
    plain = [n for n in names or [] if n not in readers]
    parts = []
    if plain:
        parts.append(_branch(sql, team_id, bounds, names, plain, lambda _: ["NULL"] * len(keys)))
    if names is None or readers:
        chosen = None if names is None else sorted(readers)
        extract = partial(_property_columns, needs=needs, keys=keys, names=chosen)
        parts.append(_branch(sql, team_id, bounds, names, chosen, extract))
    # The outer SELECT orders by time, then row id (a deterministic order of equal timestamps),
    # without sending the id itself back.
    outer = ", ".join(["e", "d", "t", *(f"p{k}" for k in range(len(keys)))])
    return f"SELECT {outer} FROM ({' UNION ALL '.join(parts)}) AS u ORDER BY t, i", sql


def _readers(needs: Needs, names: Sequence[str] | None) -> set[str]:
    """Loaded events that read at least one property (all of them when a scope is "every event")."""
    loaded = set(names or ())
    if any(scope is None for scope in needs.properties.values()):
        return loaded
    return loaded & {n for scope in needs.properties.values() if scope is not None for n in scope}


async def _chunks(conn: AsyncConnection, sql: str, params: list[Any]) -> AsyncIterator[Sequence[Any]]:
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if conn.dialect.name == "postgresql":
        # A named (server-side) cursor streams instead of buffering every row client-side.
        async with driver.cursor(name="flagship_metric_events") as cursor:
            await cursor.execute(sql, params)
            while rows := await cursor.fetchmany(CHUNK_ROWS):
                yield rows
        return
    cursor = await driver.execute(sql, params)
    try:
        while rows := await cursor.fetchmany(CHUNK_ROWS):
            yield rows
    finally:
        await cursor.close()


async def load_events(
    session: AsyncSession, team_id: int, needs: Needs, start: int, until: int
) -> EventColumns:
    """The project's events in [start, until) (µs) that `needs` names, with the properties it reads."""
    keys = sorted(needs.properties)
    names = sorted(needs.events) if needs.events is not None else None
    builder = ColumnsBuilder(keys, names)
    if names == [] or until <= start:
        return builder.build()
    conn = await session.connection()
    text, sql = statement(conn.dialect.name, team_id, needs, keys, start, until)

    def add(rows: Sequence[Any]) -> None:
        builder.add(_extract_whole(rows, sql.whole) if sql.whole else rows)

    pending: asyncio.Future[None] | None = None
    try:
        async for rows in _chunks(conn, text, sql.params):
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(asyncio.to_thread(add, rows))
    finally:
        if pending is not None:
            await pending
    return await asyncio.to_thread(builder.build)
