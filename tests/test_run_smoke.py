"""`make run` as a new user runs it: `.venv/bin/python run.py` with nothing configured but a data
directory and free ports, the embedded Temporal dev server, real worker and API processes.

The process tree is read from /proc while everything runs, so the tests can tell that stopping
(Ctrl-C, or a child dying) leaves no process behind, grandchildren included.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from settings import ENVIRONMENT_VARIABLES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# A cold start (migrations, dev server, worker and API imports) takes a few seconds on CI's 2 cores.
START_TIMEOUT = 60.0
# run.py allows the API and worker 15 s and Temporal 10 s to stop gracefully, then kills them.
STOP_TIMEOUT = 40.0


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    # With the pid, the start time tells a process from a later one that reused its pid.
    start_time: str
    argv: tuple[str, ...]


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, ppid, start time) from /proc/PID/stat, or None once the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    return fields[0], int(fields[1]), fields[19]


def _argv(pid: int) -> tuple[str, ...]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)


def descendants(root: int) -> list[Proc]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
    found: list[Proc] = []
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        if (stat := _stat(pid)) is not None:
            found.append(Proc(pid, stat[1], stat[2], _argv(pid)))
        pending += children.get(pid, [])
    return found


def alive(proc: Proc) -> bool:
    stat = _stat(proc.pid)
    # A zombie has exited; it only waits for a parent (or init) to collect its status.
    return stat is not None and stat[2] == proc.start_time and stat[0] not in ("Z", "X")


def free_ports(count: int) -> list[int]:
    # Hold every socket until all are chosen so the ports differ from one another.
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    ui_port: int
    log: Path
    seen: list[Proc] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_healthy(self, http: httpx.Client) -> list[Proc]:
        """Poll /_health until 200; returns the supervisor's process tree at that moment."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"run.py exited with {self.process.returncode} while starting:\n{self.output()}")
            try:
                if http.get(f"{self.base_url}/_health").status_code == 200:
                    self.seen = descendants(self.process.pid)
                    return self.seen
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.25)
        pytest.fail(f"/_health did not answer 200 within {START_TIMEOUT:.0f} s:\n{self.output()}")

    def wait_for_output(self, text: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert time.monotonic() < deadline, f"{text!r} not printed:\n{self.output()}"
            time.sleep(0.1)

    def kill_leftovers(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for proc in self.seen:
            if alive(proc):
                os.kill(proc.pid, signal.SIGKILL)


def new_user_environment(data_dir: Path) -> tuple[dict[str, str], int, int]:
    """(environment, API port, Temporal UI port) of a new user's `make run` on free ports."""
    port, dev_port, ui_port = free_ports(3)
    # Nothing from the developer's own environment: a new user has none of these set.
    env = {name: value for name, value in os.environ.items() if name not in ENVIRONMENT_VARIABLES}
    env |= {"DATA_DIR": str(data_dir), "PORT": str(port), "TEMPORAL_DEV_PORT": str(dev_port)}
    env["TEMPORAL_UI_PORT"] = str(ui_port)
    return env, port, ui_port


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    data_dir = tmp_path / "data"
    env, port, ui_port = new_user_environment(data_dir)
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py")],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Stack(process, data_dir, port, ui_port, log)
    try:
        yield running
    finally:
        running.kill_leftovers()  # whatever the test did, nothing may outlive it


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # trust_env=False: a proxy configured on the machine must not intercept loopback calls.
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        yield client


def child(tree: list[Proc], supervisor: int, matches: str) -> Proc:
    direct = [proc for proc in tree if proc.ppid == supervisor]
    found = [proc for proc in direct if matches in " ".join(proc.argv)]
    assert len(found) == 1, f"no single child matching {matches!r} in {[p.argv for p in direct]}"
    return found[0]


def assert_all_gone(tree: list[Proc], stack: Stack) -> None:
    deadline = time.monotonic() + 5.0  # init collects orphans asynchronously
    while (left := [proc for proc in tree if alive(proc)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"left behind: {[p.argv for p in left]}\n{stack.output()}"


def test_run_serves_the_api_and_temporal_ui_then_ctrl_c_stops_everything(
    stack: Stack, http: httpx.Client
) -> None:
    tree = stack.wait_until_healthy(http)
    for part in ("server start-dev", "worker.py", "-m api"):
        child(tree, stack.process.pid, part)

    credentials = json.loads((stack.data_dir / "credentials.json").read_text())
    me = http.get(
        f"{stack.base_url}/api/users/@me/",
        headers={"Authorization": f"Bearer {credentials['personal_api_key']}"},
    )
    assert me.status_code == 200, me.text
    assert me.json()["email"] == credentials["user_email"]
    assert http.get(f"http://127.0.0.1:{stack.ui_port}/").status_code == 200
    # The banner follows the API's first accepted connection, a moment after this test's.
    stack.wait_for_output(f"http://127.0.0.1:{stack.port}/docs")
    # The console's sign-in link is for a person at a terminal, never for a log stream.
    assert "#sign-in=" not in stack.output()

    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=STOP_TIMEOUT) == 0, stack.output()
    assert_all_gone(tree, stack)


def test_a_dying_api_stops_the_rest_and_fails_naming_it(stack: Stack, http: httpx.Client) -> None:
    tree = stack.wait_until_healthy(http)
    api = child(tree, stack.process.pid, "-m api")

    os.kill(api.pid, signal.SIGKILL)
    assert stack.process.wait(timeout=STOP_TIMEOUT) != 0
    assert "the API (python -m api) was killed by SIGKILL" in stack.output()
    assert_all_gone(tree, stack)
