"""The first-start bootstrap keeps its secrets: the key reaches the credentials file, and the output
only when that is an interactive terminal; a bootstrap key deleted by its owner stays deleted."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from db.accounts import key_by_value
from db.engine import make_async_engine, make_sessionmaker
from domain.keys import new_personal_api_key
from tests.support.bootstrap import run_bootstrap

ROOT = Path(__file__).resolve().parents[2]


async def _bootstrap(database_url: str, key: str | None) -> bool:
    """One start's bootstrap; True when it created the first organization."""
    return await run_bootstrap(database_url, key) is not None


async def _delete_key(database_url: str, value: str) -> None:
    """What `DELETE /api/personal_api_keys/{id}/` does to the row."""
    engine = make_async_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            found = await key_by_value(session, value)
            assert found is not None
            await session.delete(found)
            await session.commit()
    finally:
        await engine.dispose()


async def _key_exists(database_url: str, value: str) -> bool:
    engine = make_async_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            return await key_by_value(session, value) is not None
    finally:
        await engine.dispose()


async def test_a_deleted_bootstrap_key_is_not_created_again(database_url: str) -> None:
    first = new_personal_api_key()
    assert await _bootstrap(database_url, first)
    await _delete_key(database_url, first)
    assert not await _bootstrap(database_url, first)  # the next start, same environment
    assert not await _key_exists(database_url, first)

    # A key set after the first start still becomes a working key, once.
    later = new_personal_api_key()
    assert not await _bootstrap(database_url, later)
    assert await _key_exists(database_url, later)
    await _delete_key(database_url, later)
    assert not await _bootstrap(database_url, later)
    assert not await _key_exists(database_url, later)


def _upgrade(tmp_path: Path, *, tty: bool) -> tuple[str, dict[str, str]]:
    """`python -m db upgrade` on a new database: (everything it printed, the credentials file)."""
    data_dir = tmp_path / ("tty" if tty else "pipe")
    data_dir.mkdir()
    env = os.environ | {"DATA_DIR": str(data_dir), "DATABASE_URL": f"sqlite:///{data_dir}/flagship.db"}
    for name in ("BOOTSTRAP_PERSONAL_API_KEY", "BOOTSTRAP_PROJECT_API_TOKEN"):
        env.pop(name, None)
    argv = [sys.executable, "-m", "db", "upgrade"]
    if tty:
        # A real pseudo-terminal, as `make run` in a shell has.
        controller, terminal = pty.openpty()
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=terminal, stderr=terminal)
        os.close(terminal)
        output = _read_all(controller)
        assert proc.wait(60) == 0, output
    else:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=60, check=True)
        output = done.stdout.decode() + done.stderr.decode()
    credentials = json.loads((data_dir / "credentials.json").read_text())
    assert (data_dir / "credentials.json").stat().st_mode & 0o777 == 0o600
    return output, credentials


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def test_the_key_is_printed_to_a_terminal_and_never_to_a_log_stream(tmp_path: Path) -> None:
    logged, credentials = _upgrade(tmp_path, tty=False)
    assert credentials["personal_api_key"].startswith("phx_")
    assert credentials["personal_api_key"] not in logged
    assert credentials["project_api_token"] not in logged
    assert "credentials saved to" in logged

    shown, credentials = _upgrade(tmp_path, tty=True)
    assert credentials["personal_api_key"] in shown
    assert credentials["project_api_token"] in shown
