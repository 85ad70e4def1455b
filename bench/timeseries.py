"""Benchmark of the experiment timeseries: a 14-day series of a funnel and of a mean metric over
1,000,000 stored events (100,000 users, 3 variants), on SQLite.

    .venv/bin/python bench/timeseries.py [--users 100000] [--days 14] [--db PATH] [--backend clickhouse]
        [--clickhouse-only]

Generates the events straight into a fresh migrated SQLite file (stdlib sqlite3, executemany), then
for each metric runs the code the backfill activity runs (`db.metric_analysis`: one event query +
the one-pass engine) in-process, next to a plain numpy reference that fetches the same columns with
stdlib sqlite3 and recomputes every day from scratch. Both must agree on every day's per-variant
sufficient statistics. Prints figures; it is not a test.

`--backend clickhouse` also loads the events into ClickHouse's engine in process (chdb) and runs
each series through both engines, printing seconds and Flagship's memory (tracemalloc peak) for
each and whether every day agrees, `srm` and CUPED's sums included (bench/_clickhouse.py); then
both metrics again with CUPED on (14-day lookback).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._clickhouse import compare, load  # noqa: E402
from db.bootstrap import bootstrap  # noqa: E402
from db.clickhouse.store import ClickHouseEvents  # noqa: E402
from db.engine import make_async_engine, make_sessionmaker  # noqa: E402
from db.metric_analysis import analysis_context, metric_results  # noqa: E402
from db.metric_events import load_events  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.tables import Experiment, FeatureFlag  # noqa: E402
from domain.metric_engine import analysis_days, metric_needs, metric_series, to_micros  # noqa: E402

FLAG = "bench-flag"
VARIANTS = ("control", "test", "test-2")
START = datetime(2026, 1, 5, tzinfo=UTC)
HOUR = 3_600_000_000
FUNNEL = {
    "kind": "ExperimentMetric",
    "metric_type": "funnel",
    "uuid": "bench-funnel",
    "series": [{"kind": "EventsNode", "event": e} for e in ("view", "cart", "purchase")],
}
MEAN = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "uuid": "bench-mean",
    "source": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
    "upper_bound_percentile": 0.99,
}

CUPED = {"cuped": {"enabled": True, "lookback_days": 14}}


# ---- data -----------------------------------------------------------------------------------


def _times(rng: np.random.Generator, first: np.ndarray, count: int) -> np.ndarray:
    """µs timestamps after each user's exposure (some up to an hour before it, which must not count)."""
    offset = rng.exponential(2 * 86_400e6, count).astype(np.int64) - rng.integers(0, HOUR, count)
    out: np.ndarray = first + offset
    return out


def generate(users: int, days: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """~10 events per user: 1-2 exposures (1% switch variant), views, carts, purchases, noise."""
    rng = np.random.default_rng(seed)
    span = days * 86_400_000_000
    first = to_micros(START) + rng.integers(0, span - 3_600_000_000, users)
    variant = rng.integers(0, len(VARIANTS), users)
    out: list[tuple[str, int, int, str]] = []  # (event, user, µs, properties JSON)
    for u, at, v in zip(range(users), first.tolist(), variant.tolist(), strict=True):
        out.append(("$feature_flag_called", u, at, _exposure(VARIANTS[v])))
    horizon = to_micros(START) + span  # events past the last day are not generated (no clipped ties)
    switch = np.flatnonzero(rng.random(users) < 0.01)
    late = first[switch] + rng.integers(1, 24 * HOUR, switch.size)
    for u, at in zip(switch.tolist(), late.tolist(), strict=True):
        if at < horizon:
            out.append(("$feature_flag_called", u, at, _exposure(VARIANTS[(variant[u] + 1) % 3])))
    mix = {"view": 5.25, "cart": 2.1, "purchase": 1.4, "noise": 1.7}
    for name, per_user in mix.items():
        who = rng.integers(0, users, int(users * per_user))
        when = _times(rng, first[who], who.size)
        keep = when < horizon
        who, when = who[keep], when[keep]
        amounts = np.round(rng.lognormal(3, 1, who.size), 2)
        for u, at, amount in zip(who.tolist(), when.tolist(), amounts.tolist(), strict=True):
            props = (
                f'{{"amount": {amount}, "currency": "USD", "$session_id": "s{u}"}}'
                if name == "purchase"
                else f'{{"$current_url": "https://shop.example/{name}", "$session_id": "s{u}"}}'
            )
            out.append((name, u, at, props))
    return out


def _exposure(variant: str) -> str:
    return json.dumps({"$feature_flag": FLAG, "$feature_flag_response": variant, "$lib": "posthog-python"})


def _text_times(micros: np.ndarray) -> list[str]:
    """SQLAlchemy's SQLite DATETIME text, vectorized."""
    texts: list[str] = np.char.replace(
        np.datetime_as_string(micros.astype("datetime64[us]"), unit="us"), "T", " "
    ).tolist()
    return texts


def store(path: Path, team_id: int, rows: list[tuple[Any, ...]], stamps: list[str]) -> None:
    created = "2026-01-01 00:00:00.000000"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.executemany(
        "INSERT INTO event (uuid, team_id, event, distinct_id, timestamp, properties, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ((f"{i:036d}", team_id, r[0], f"user-{r[1]}", stamps[i], r[3], created) for i, r in enumerate(rows)),
    )
    con.commit()
    con.close()


async def setup(url: str, days: int) -> tuple[int, int]:
    engine = make_async_engine(url)
    async with make_sessionmaker(engine)() as session:
        creds = await bootstrap(session, personal_api_key=None, project_api_token=None)
        assert creds is not None
        filters = {
            "groups": [{"properties": [], "rollout_percentage": 100}],
            "multivariate": {"variants": [{"key": k, "rollout_percentage": 100 / 3} for k in VARIANTS]},
        }
        flag = FeatureFlag(team_id=creds.project_id, key=FLAG, filters=filters)
        session.add(flag)
        await session.flush()
        assert flag.id is not None
        exp = Experiment(
            team_id=creds.project_id, name="bench", feature_flag_id=flag.id, start_date=START,
            end_date=START + timedelta(days=days) - timedelta(microseconds=1), metrics=[FUNNEL, MEAN],
        )  # fmt: skip
        session.add(exp)
        await session.commit()
        assert exp.id is not None
        ids = (creds.project_id, exp.id)
    await engine.dispose()
    return ids


# ---- Flagship's path ------------------------------------------------------------------------


async def flagship(
    url: str,
    experiment_id: int,
    metric: dict[str, Any],
    days: int,
    events: ClickHouseEvents | None = None,
    stats_config: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The series as the backfill computes it: from SQLite (embedded engine), or from `events`;
    `stats_config` replaces the experiment's for this analysis only (never committed)."""
    engine = make_async_engine(url)
    try:
        async with make_sessionmaker(engine, events=events)() as session:
            experiment = await session.get(Experiment, experiment_id)
            assert experiment is not None and experiment.start_date is not None
            if stats_config is not None:
                experiment.stats_config = stats_config
            context = await analysis_context(session, experiment, [metric])
            boundaries = analysis_days(experiment.start_date, experiment.end_date, START, "UTC")
            return await metric_results(session, context, metric, [d.as_of for d in boundaries])
    finally:
        await engine.dispose()


async def flagship_parts(
    url: str, experiment_id: int, metric: dict[str, Any], days: int
) -> tuple[float, float]:
    """The same two steps `metric_results` chains, timed apart: the one query, then the sweep."""
    engine = make_async_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            experiment = await session.get(Experiment, experiment_id)
            assert experiment is not None and experiment.start_date is not None
            context = await analysis_context(session, experiment, [metric])
            boundaries = [
                d.as_of for d in analysis_days(experiment.start_date, experiment.end_date, START, "UTC")
            ]
            needs = metric_needs(context.spec, metric)
            started = time.perf_counter()
            events = await load_events(session, context.team_id, needs, context.spec.start, boundaries[-1])
            loaded = time.perf_counter()
            metric_series(context.spec, metric, events, boundaries)
            return loaded - started, time.perf_counter() - loaded
    finally:
        await engine.dispose()


# ---- plain numpy reference ------------------------------------------------------------------

# The straightforward query: every needed value of every row, SQLite's own JSON extraction, sorted.
REFERENCE_SQL = (
    "SELECT event, distinct_id, timestamp, properties ->> '$.\"$feature_flag\"',"
    " properties ->> '$.\"$feature_flag_response\"', properties ->> '$.amount'"
    " FROM event WHERE team_id = ? AND event IN ({names}) AND timestamp >= ? AND timestamp < ? ORDER BY timestamp, id"
)


def reference_load(path: Path, team_id: int, names: list[str], days: int) -> dict[str, np.ndarray]:
    con = sqlite3.connect(path)
    bounds = _text_times(np.asarray([to_micros(START), to_micros(START + timedelta(days=days))]))
    rows = con.execute(
        REFERENCE_SQL.format(names=",".join("?" * len(names))), (team_id, *names, *bounds)
    ).fetchall()
    con.close()
    event, user, ts, flag, response, amount = (np.asarray(c, dtype=object) for c in zip(*rows, strict=True))
    _, user_code = np.unique(user.astype(str), return_inverse=True)
    variant = np.full(len(rows), -1)
    for i, key in enumerate(VARIANTS):
        variant[(response == key) & (flag == FLAG)] = i
    return {
        "event": event.astype(str),
        "user": user_code,
        "ts": ts.astype(str).astype("datetime64[us]").astype(np.int64),
        "variant": variant,
        "amount": np.where(amount == None, 0.0, amount).astype(np.float64),  # noqa: E711
    }


def _exposure_state(data: dict[str, np.ndarray], upper: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    users = int(data["user"].max()) + 1
    rows = np.flatnonzero(
        (data["event"] == "$feature_flag_called") & (data["variant"] >= 0) & (data["ts"] < upper)
    )
    first = np.full(users, np.iinfo(np.int64).max)
    np.minimum.at(first, data["user"][rows], data["ts"][rows])
    variant = np.full(users, -1)
    at_first = rows[data["ts"][rows] == first[data["user"][rows]]]
    variant[data["user"][at_first]] = data["variant"][at_first]
    switched = np.zeros(users, dtype=bool)
    switched[data["user"][rows][data["variant"][rows] != variant[data["user"][rows]]]] = True
    return first, variant, (variant >= 0) & ~switched


def reference_mean(data: dict[str, np.ndarray], upper: int) -> list[tuple[int, float, float]]:
    first, variant, counted = _exposure_state(data, upper)
    rows = np.flatnonzero((data["event"] == "purchase") & (data["ts"] < upper))
    rows = rows[data["ts"][rows] >= first[data["user"][rows]]]
    value = np.bincount(data["user"][rows], weights=data["amount"][rows], minlength=first.size)
    exposed = variant >= 0
    value = np.minimum(value, np.quantile(value[exposed], 0.99))
    return [
        (int(m.sum()), float(value[m].sum()), float((value[m] ** 2).sum()))
        for m in (counted & (variant == i) for i in range(len(VARIANTS)))
    ]


def reference_funnel(data: dict[str, np.ndarray], upper: int) -> list[tuple[int, float, list[int]]]:
    first, variant, counted = _exposure_state(data, upper)
    reached = np.zeros(first.size, dtype=np.int64)
    previous = first.copy()
    for step in ("view", "cart", "purchase"):
        rows = np.flatnonzero((data["event"] == step) & (data["ts"] < upper))
        rows = rows[data["ts"][rows] >= previous[data["user"][rows]]]
        at = np.full(first.size, np.iinfo(np.int64).max)
        np.minimum.at(at, data["user"][rows], data["ts"][rows])
        done = at < np.iinfo(np.int64).max
        reached += done
        previous = np.where(done, at + 1, np.iinfo(np.int64).max)  # the next step comes strictly later
    out = []
    for i in range(len(VARIANTS)):
        m = counted & (variant == i)
        out.append(
            (int(m.sum()), float((reached[m] == 3).sum()), [int((reached[m] >= s).sum()) for s in (1, 2, 3)])
        )
    return out


# ---- run ------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def _ours(results: list[dict[str, Any]], funnel: bool) -> list[list[tuple[Any, ...]]]:
    days = []
    for res in results:
        rows = [res["baseline"], *res["variant_results"]]
        if funnel:
            days.append([(r["number_of_samples"], r["sum"], r["step_counts"]) for r in rows])
        else:
            days.append([(r["number_of_samples"], r["sum"], r["sum_squares"]) for r in rows])
    return days


def _agree(ours: list[list[tuple[Any, ...]]], theirs: list[list[tuple[Any, ...]]]) -> bool:
    for day_ours, day_theirs in zip(ours, theirs, strict=True):
        for a, b in zip(day_ours, day_theirs, strict=True):
            if a[0] != b[0] or not np.isclose(a[1], b[1], rtol=1e-9) or (
                isinstance(a[2], list) and a[2] != b[2]) or (not isinstance(a[2], list) and not np.isclose(a[2], b[2], rtol=1e-9)):  # fmt: skip
                return False
    return True


def bench_metric(
    name: str, metric: dict[str, Any], path: Path, ids: tuple[int, int], days: int, total: int
) -> None:
    url = f"sqlite:///{path}"
    ours, seconds = timed(lambda: asyncio.run(flagship(url, ids[1], metric, days)))
    load, sweep = asyncio.run(flagship_parts(url, ids[1], metric, days))
    names = ["$feature_flag_called", *(["view", "cart", "purchase"] if metric is FUNNEL else ["purchase"])]
    data, load_seconds = timed(lambda: reference_load(path, ids[0], names, days))
    boundaries = [to_micros(START + timedelta(days=d + 1)) for d in range(days)]
    compute = reference_funnel if metric is FUNNEL else reference_mean
    theirs, compute_seconds = timed(lambda: [compute(data, b) for b in boundaries])
    reference = load_seconds + compute_seconds
    agree = _agree(_ours(ours, metric is FUNNEL), theirs)
    print(
        f"{name:<7} flagship {seconds:6.2f} s (query {load:.2f} + sweep {sweep:.2f})  {total / seconds:>10,.0f} events/s | numpy reference "
        f"{reference:6.2f} s (fetch {load_seconds:.2f} + compute {compute_seconds:.2f})  "
        f"{total / reference:>10,.0f} events/s | ratio {seconds / reference:4.2f}x | days agree: {agree}"
    )


def _same_days(ours: list[dict[str, Any]], theirs: list[dict[str, Any]], funnel: bool) -> bool:
    return _agree(_ours(ours, funnel), _ours(theirs, funnel))


def _extras(results: list[dict[str, Any]]) -> list[tuple[Any, list[float]]]:
    """Per day: the srm's observed counts and every variant's CUPED sums (NaN when absent)."""
    names = ("covariate_sum", "covariate_sum_squares", "covariate_sum_product")
    return [
        (
            res.get("srm", {}).get("observed"),
            [
                np.nan if r[n] is None else r[n]
                for r in [res["baseline"], *res["variant_results"]]
                for n in names
            ],
        )
        for res in results
    ]


def _same_extras(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> bool:
    return all(
        a[0] == b[0] and np.allclose(a[1], b[1], rtol=1e-9, equal_nan=True)
        for a, b in zip(_extras(ours), _extras(theirs), strict=True)
    )


def prepare(
    args: argparse.Namespace, path: Path, ids: tuple[int, int]
) -> tuple[int, ClickHouseEvents | None]:
    """Generate and store the events (and load them into chdb); the row lists die with this frame."""
    rows, gen_seconds = timed(lambda: generate(args.users, args.days))
    stamps = _text_times(np.asarray([r[2] for r in rows], dtype=np.int64))
    _, store_seconds = timed(lambda: store(path, ids[0], rows, stamps))
    print(
        f"generated {len(rows):,} events for {args.users:,} users over {args.days} days in {gen_seconds:.1f} s, stored in {store_seconds:.1f} s ({path})"
    )
    if args.backend != "clickhouse":
        return len(rows), None
    events, load_seconds = timed(lambda: load(path.parent / "chdb", ids[0], rows, stamps))
    print(f"loaded them into ClickHouse (chdb, merged) in {load_seconds:.1f} s")
    return len(rows), events


def compare_metric(
    name: str,
    metric: dict[str, Any],
    path: Path,
    ids: tuple[int, int],
    days: int,
    events: ClickHouseEvents,
    stats_config: dict[str, Any] | None = None,
    *,
    embedded_too: bool = True,
) -> None:
    def analyse(backend: ClickHouseEvents | None) -> Any:
        return flagship(f"sqlite:///{path}", ids[1], metric, days, backend, stats_config)

    funnel = metric is FUNNEL
    compare(
        name,
        analyse,
        events,
        lambda ours, theirs: (
            _agree(_ours(ours, funnel), _ours(theirs, funnel)) and _same_extras(ours, theirs)
        ),
        embedded_too=embedded_too,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--backend", choices=["sql", "clickhouse"], default="sql")
    parser.add_argument(
        "--clickhouse-only",
        action="store_true",
        help="with --backend clickhouse: skip the embedded engine (minutes at 10M events) and its agreement check",
    )
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp(prefix="flagship-bench-")) / "bench.db"
    upgrade(f"sqlite:///{path}")
    ids = asyncio.run(setup(f"sqlite:///{path}", args.days))
    total, events = prepare(args, path, ids)
    for name, metric in (("funnel", FUNNEL), ("mean", MEAN)):
        if events is None:
            bench_metric(name, metric, path, ids, args.days, total)
        else:
            compare_metric(name, metric, path, ids, args.days, events, embedded_too=not args.clickhouse_only)
    if events is not None:  # CUPED adds the covariate's scan (the lookback before each exposure)
        for name, metric in (("funnel+cuped", FUNNEL), ("mean+cuped", MEAN)):
            compare_metric(
                name, metric, path, ids, args.days, events, CUPED, embedded_too=not args.clickhouse_only
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
