"""`python -m db upgrade`: apply migrations, then bootstrap the first organization if empty."""

from __future__ import annotations

import argparse
import asyncio
import sys

from db.bootstrap import bootstrap_from_settings
from db.migrate import upgrade
from settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m db")
    parser.add_argument("command", choices=["upgrade"])
    parser.add_argument("--no-bootstrap", action="store_true", help="only apply migrations")
    args = parser.parse_args(argv)
    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    if not args.no_bootstrap:
        asyncio.run(bootstrap_from_settings(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
