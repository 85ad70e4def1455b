"""A real Flagship for browser tests: `python run.py` (embedded Temporal dev server, worker, API)
on free ports, with its stdout on a pseudo-terminal so that it prints the console's sign-in link
as it does for a person at a terminal."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_run_smoke import Stack, new_user_environment

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0  # the link follows the banner, which follows the first healthy answer
LINK = re.compile(r"Sign in:\s+(http://\S+/#sign-in=([A-Za-z0-9]+))")


@dataclass
class Flagship(Stack):
    """`make run`'s stack (tests/test_run_smoke.py) read from a terminal instead of a log file."""

    master: int = -1
    chunks: list[bytes] = field(default_factory=list)

    def output(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def drain(self) -> None:
        """Keep reading the terminal: a full pty buffer would block the children's logging."""
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.chunks.append(data)

    def wait_for_link(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"run.py exited with {self.process.returncode}:\n{self.output()}")
            found = LINK.search(self.output())
            if found:
                return found.group(1)
            time.sleep(0.2)
        raise RuntimeError(f"no sign-in link within {START_TIMEOUT:.0f} s:\n{self.output()}")

    def credentials(self) -> dict[str, Any]:
        return dict(json.loads((self.data_dir / "credentials.json").read_text()))

    def stop(self) -> None:
        """Ctrl-C as a person would; whatever is left after it (it should be nothing) is killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=40)
        self.kill_leftovers()
        os.close(self.master)


def start_flagship(tmp: Path, extra_env: dict[str, str] | None = None) -> Flagship:
    data_dir = tmp / "data"
    env, port, ui_port = new_user_environment(data_dir)
    env |= {"LOG_LEVEL": "WARNING"} | (extra_env or {})
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py")],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        start_new_session=True,  # its own group: a stuck stop can be killed whole
    )
    os.close(slave)
    flagship = Flagship(process, data_dir, port, ui_port, log=tmp / "unused.log", master=master)
    threading.Thread(target=flagship.drain, daemon=True).start()
    return flagship


def wait_healthy(flagship: Flagship) -> None:
    """Up and answering; the process tree is noted so that stop() can kill any straggler."""
    with httpx.Client(timeout=5.0, trust_env=False) as http:
        flagship.wait_until_healthy(http)


def launch(tmp: Path, attempts: int = 3) -> Flagship:
    """A healthy Flagship that has printed its sign-in link. The free ports are chosen before the
    servers bind them; on a shared machine another process may take one in between, so a start
    that fails with EADDRINUSE is tried again on new ports."""
    for attempt in range(1, attempts + 1):
        flagship = start_flagship(tmp / f"try{attempt}")
        try:
            wait_healthy(flagship)
            flagship.wait_for_link()
            return flagship
        except (RuntimeError, pytest.fail.Exception):
            flagship.stop()
            if attempt == attempts or "address already in use" not in flagship.output():
                raise
    raise AssertionError("unreachable")
