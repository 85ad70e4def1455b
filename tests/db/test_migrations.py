"""The migrations and the SQLModel tables describe the same schema, on both databases, with one
head: a table or column added in code without its migration (or the reverse, or two branches'
migrations left unchained after a merge) fails here, not on a user's upgrade."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import db.tables  # noqa: F401  (registers every table on the metadata)
from db.engine import make_sync_engine
from db.migrate import current_heads


def test_one_head() -> None:
    assert len(current_heads()) == 1, current_heads()


def test_the_migrated_schema_is_the_models(database_url: str) -> None:
    """`database_url` is migrated to head by the test templates (tests/support/databases.py)."""
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []
