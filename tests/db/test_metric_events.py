"""The one-query event loader on both backends: same columns as building them from the rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio

from db.bootstrap import Credentials
from db.engine import make_async_engine, make_sessionmaker
from db.metric_events import load_events
from domain.metric_engine import EventColumns, Needs, to_micros
from settings import Settings
from tests.support.analysis import Row, store_events

T0 = datetime(2024, 5, 1, tzinfo=UTC)
ROWS: list[Row] = [
    (
        "$feature_flag_called",
        "a",
        T0 + timedelta(microseconds=999_999),
        {"$feature_flag": "f", "$feature_flag_response": "test"},
    ),
    (
        "purchase",
        "a",
        T0 + timedelta(seconds=1),
        {"amount": 10, 'odd"key': 1, "n": None, "nested": {"x": [1, 2]}},
    ),
    ("purchase", "b", T0 + timedelta(seconds=1), {"amount": "7.5", "path\\key": True}),  # same time: id order
    ("view", "b", T0 + timedelta(seconds=2), {"amount": 3}),  # amount is not read on views
    ("noise", "c", T0 + timedelta(seconds=3), {"amount": 1}),  # not a needed event
    ("purchase", "c", T0 + timedelta(days=2), {"amount": 1}),  # after `until`
]
NEEDS = Needs(
    events=frozenset({"$feature_flag_called", "purchase", "view"}),
    properties={
        "$feature_flag_response": frozenset({"$feature_flag_called"}),
        "amount": frozenset({"purchase"}),
        'odd"key': frozenset({"purchase"}),
        "path\\key": frozenset({"purchase"}),
        "n": frozenset({"purchase"}),
        "nested": None,
    },
)


def decoded(events: EventColumns) -> list[tuple[Any, ...]]:
    """Per event: (name, entity, µs, {key: value for loaded, present keys})."""
    out = []
    for i in range(events.size):
        props = {k: c.values[c.codes[i]] for k, c in events.properties.items() if c.codes[i] >= 0}
        out.append(
            (
                events.names[events.event[i]],
                events.entities[events.entity[i]],
                int(events.timestamp[i]),
                props,
            )
        )
    return out


@pytest_asyncio.fixture(loop_scope="session")
async def stored(settings: Settings, credentials: Credentials) -> int:
    await store_events(settings, credentials.project_id, ROWS)
    return credentials.project_id


async def test_loader_matches_row_built_columns(settings: Settings, stored: int) -> None:
    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            loaded = await load_events(
                session, stored, NEEDS, to_micros(T0), to_micros(T0 + timedelta(days=1))
            )
    finally:
        await engine.dispose()
    # Each property arrives only on the events that read it; absent keys stay absent, JSON null is None.
    expected = [
        (name, user, to_micros(when), {k: v for k, v in props.items() if read(name, k)})
        for name, user, when, props in ROWS[:4]
    ]
    assert decoded(loaded) == expected


def read(event: str, key: str) -> bool:
    scope = NEEDS.properties.get(key, frozenset())
    return scope is None or event in scope


async def test_nothing_to_load(settings: Settings, stored: int) -> None:
    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            empty = await load_events(session, stored, Needs(events=frozenset()), 0, to_micros(T0) * 2)
            everything = await load_events(
                session, stored, Needs(events=None), to_micros(T0), to_micros(T0 + timedelta(days=3))
            )
    finally:
        await engine.dispose()
    assert empty.size == 0
    assert everything.size == len(ROWS) and everything.names == (
        "$feature_flag_called",
        "purchase",
        "view",
        "noise",
    )
