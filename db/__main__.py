"""`python -m db upgrade`: apply migrations (and, with EVENTS_BACKEND=clickhouse, ClickHouse's), then
bootstrap the first organization if empty.

`python -m db export-events`: copy the events stored in the SQL database into ClickHouse (the move
to EVENTS_BACKEND=clickhouse), in batches, printing progress.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from db.bootstrap import bootstrap_from_settings
from db.clickhouse.export import Progress, export_events
from db.clickhouse.schema import migrate
from db.clickhouse.store import ClickHouseEvents
from db.engine import make_async_engine
from db.migrate import upgrade
from settings import Settings, load_settings


def _clickhouse(settings: Settings) -> ClickHouseEvents:
    events = ClickHouseEvents.from_settings(settings)
    if events is None:
        raise SystemExit("python -m db export-events: set EVENTS_BACKEND=clickhouse and CLICKHOUSE_URL first")
    return events


def _migrate_clickhouse(events: ClickHouseEvents) -> None:
    applied = migrate(events.ch, events.ttl_days)
    ttl = f"{events.ttl_days} days" if events.ttl_days else "none"
    print(
        f"flagship: ClickHouse {events.ch.database} migrated ({', '.join(applied) or 'up to date'}; TTL {ttl})",
        file=sys.stderr,
    )


def _report(progress: Progress) -> None:
    share = 100 * progress.copied / progress.total if progress.total else 100.0
    print(
        f"flagship: exported {progress.copied:,} of {progress.total:,} events ({share:.1f}%), last id {progress.last_id}",
        file=sys.stderr,
        flush=True,
    )


async def _export(settings: Settings, args: argparse.Namespace) -> None:
    events = _clickhouse(settings)
    _migrate_clickhouse(events)
    engine = make_async_engine(settings.database_url)
    try:
        done = await export_events(
            engine,
            events.ch,
            _report,
            batch_size=args.batch_size,
            team_id=args.project,
            after_id=args.after_id,
        )
    finally:
        await engine.dispose()
        events.close()
    print(
        f"flagship: export complete: {done.copied:,} events copied, last id {done.last_id}", file=sys.stderr
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m db")
    parser.add_argument("command", choices=["upgrade", "export-events"])
    parser.add_argument("--no-bootstrap", action="store_true", help="upgrade: only apply migrations")
    parser.add_argument("--batch-size", type=int, default=50_000, help="export-events: rows per batch")
    parser.add_argument("--project", type=int, default=None, help="export-events: one project's events only")
    parser.add_argument("--after-id", type=int, default=0, help="export-events: resume after this event id")
    args = parser.parse_args(argv)
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if args.command == "export-events":
        asyncio.run(_export(settings, args))
        return 0
    upgrade(settings.database_url)
    events = ClickHouseEvents.from_settings(settings)
    if events is not None:
        _migrate_clickhouse(events)
        events.close()
    if not args.no_bootstrap:
        asyncio.run(bootstrap_from_settings(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
