"""Per-test databases made cheaply from one migrated template per backend."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg

from db.migrate import upgrade


class SqliteTemplates:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = root / "template.db"
        upgrade(f"sqlite:///{self.template}")

    def new_database(self) -> str:
        path = self.root / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"


class PostgresTemplates:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._admin("CREATE DATABASE flagship_template")
        upgrade(f"{base_url}/flagship_template")

    def _admin(self, sql: str) -> None:
        dsn = self.base_url.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def new_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE flagship_template")
        return f"{self.base_url}/{name}"
