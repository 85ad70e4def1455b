"""Real Flagship processes for tests: `python -m api` and `python worker.py` on free ports, with
their output in a log file the failure message shows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from settings import Settings
from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0

__all__ = ["ROOT", "base_env", "free_port", "process", "start_worker", "wait_for"]


@contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return r
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered:\n{log.read_text()}")


def base_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return os.environ | {
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "TEMPORAL_TASK_QUEUE": f"tq-{uuid.uuid4().hex[:12]}",
        "LOG_FORMAT": "json",
    }


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """`python worker.py` on the test's database, Temporal namespace and task queue (the caller
    kills or stops it: the fault-injection tests kill it mid-activity)."""
    env = dict(
        os.environ,
        DATABASE_URL=settings.database_url,
        TEMPORAL_ADDRESS=settings.temporal_target,
        TEMPORAL_NAMESPACE=settings.temporal_namespace,
        TEMPORAL_TASK_QUEUE=settings.task_queue,
    )
    return subprocess.Popen([sys.executable, str(ROOT / "worker.py")], env=env, cwd=ROOT)
