"""What Prometheus metrics cost on the /flags hot path: the same load with FLAGSHIP_METRICS=1 and =0.

    .venv/bin/python bench/flags_metrics_overhead.py [--seconds 2] [--rounds 16] [--pairs 4] [--connections 64]

Two real APIs (`python -m api`, one process each, as bench/flags.py starts it), one with metrics on
and one with them off, each on its own SQLite file with the same 100 flags. Each round loads both,
back to back in alternating order, and the rounds are spread over several fresh pairs of servers
(two processes of the same code differ by several % on their own). Printed per load: the median throughput of each and the median
of the paired rounds' loss (the target: ≤ 5 %), the best rounds, and the API process's CPU time per
request (median of the rounds), which is what throughput is the inverse of and which stays put
when other work on the machine takes CPU from the API. Also printed, in-process and so free of
network noise: what the request observer (request id, access log, metrics) costs per request on
the SDK fast path, and the whole app with metrics on, off, and with no instrumentation at all.
Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.flags import _create_flags, _env, _load, free_port  # noqa: E402
from observability.http import RequestObserver  # noqa: E402


class Unobserved(RequestObserver):
    """For reference only: no request id, access log or metrics (no configuration offers that)."""

    @staticmethod
    def open(raw_request_id: bytes | None) -> Any:
        return "", None

    def close(self, *args: Any, **kwargs: Any) -> None:
        return None


# Both APIs on CPU 0 and the load generators (children of this process) on CPU 1: otherwise the
# scheduler's placement differs between the two servers and biases the comparison by several %.
PIN = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
MODES = {"one": "/flags one flag (get_feature_flag)", "all": "/flags all 100 flags"}


@dataclass(frozen=True)
class Server:
    port: int
    pid: int
    database_url: str

    def cpu_seconds(self) -> float:
        """User + system CPU of the API process (WEB_CONCURRENCY=1: uvicorn serves in it)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def api(metrics: bool) -> Iterator[Server]:
    """A migrated, bootstrapped API with 100 flags, metrics on or off."""
    with tempfile.TemporaryDirectory(prefix="flagship-bench-metrics-") as tmp:
        port = free_port()
        env = _env(Path(tmp), port, 1) | {"FLAGSHIP_METRICS": "1" if metrics else "0"}
        subprocess.run(
            [sys.executable, "-m", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "api"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
        if PIN:
            os.sched_setaffinity(process.pid, {0})
        try:
            _create_flags(port)
            yield Server(port, process.pid, env["DATABASE_URL"])
        finally:
            process.terminate()
            process.wait(15)


def in_process_cost(rounds: int = 100_000) -> tuple[float, float, float]:
    """µs per /flags request of the SDK fast path around a trivial handler, with the request
    observer's metrics on, off, and with no observer work at all (no request id, no access log):
    the part of a request that instrumentation adds."""
    from api.instrumentation import route_counters
    from api.sdk_asgi import SdkFastPath, SdkResponse

    async def handler(_request: Any) -> SdkResponse:
        return SdkResponse(200, b"{}")

    async def send(_message: Any) -> None:
        return None

    scope, receive = _flags_scope(b"{}")
    scope["app"] = type("App", (), {"state": None})
    routes = {"/flags": (frozenset({"POST"}), handler)}
    observers = (
        RequestObserver(metrics_enabled=True, route_counters=route_counters()),
        RequestObserver(metrics_enabled=False, route_counters=route_counters()),
        Unobserved(),
    )

    async def timed(fast_path: SdkFastPath) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(rounds):
                await fast_path(scope, receive, send)
            best = min(best, (time.perf_counter() - started) / rounds * 1e6)
        return best

    async def all_of() -> list[float]:
        return [await timed(SdkFastPath(None, routes, observer)) for observer in observers]  # type: ignore[arg-type]

    on, off, none = asyncio.run(all_of())
    return on, off, none


def _flags_scope(body: bytes) -> tuple[dict[str, Any], Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/flags/",
        "raw_path": b"/flags/",
        "query_string": b"v=2",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return scope, receive


async def _check_serves(app: Any, body: bytes) -> None:
    """The flag cache has loaded: an answer with every flag, not a 503."""
    messages: list[dict[str, Any]] = []

    async def keep(message: dict[str, Any]) -> None:
        messages.append(message)

    for _ in range(100):
        messages.clear()
        await app(*_flags_scope(body), keep)
        if messages[0]["status"] == 200 and len(orjson.loads(messages[1]["body"])["flags"]) == 100:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the in-process app does not serve the flags: {messages}")


def _bodies(requests: int) -> dict[str, list[bytes]]:
    from bench.flags import TOKEN, person

    return {
        mode: [
            orjson.dumps(
                {"api_key": TOKEN, "distinct_id": f"user-{n}", "person_properties": person(n)} | extra
            )
            for n in range(requests)
        ]
        for mode, extra in (("one", {"flag_keys_to_evaluate": ["flag-7"]}), ("all", {}))
    }


async def _time_block(app: Any, payloads: list[bytes]) -> float:
    async def send(_message: Any) -> None:
        return None

    gc.collect()
    started = time.perf_counter()
    for body in payloads:
        await app(*_flags_scope(body), send)
    return (time.perf_counter() - started) / len(payloads) * 1e6


# mode -> best µs on, best µs off, median loss %, best µs without the request middleware at all
AppFigures = dict[str, tuple[float, float, float, float]]


def _app(database_url: str, metrics: bool | None) -> Any:
    """The API app; metrics None: the SDK fast path without its request observer (no request
    ids, access log or metrics), for reference only: that is no configuration Flagship offers."""
    from api.app import create_app
    from api.sdk_asgi import SdkFastPath
    from settings import Settings

    settings = Settings(
        database_url=database_url, temporal_address="127.0.0.1:1", metrics_enabled=bool(metrics)
    )
    app = create_app(settings)
    if metrics is None:
        for m in app.user_middleware:
            if getattr(m, "cls", None) is SdkFastPath:
                m.kwargs["observer"] = Unobserved()
    return app


async def app_cost(database_url: str, rounds: int = 15, requests: int = 400) -> AppFigures:
    """µs per /flags request through the whole app in-process (ASGI, no network, no uvicorn), with
    metrics on and off. Blocks alternate between the apps; each round's on/off pair gives a loss,
    and the median of those is robust to bursts of other work on the machine."""
    from asgi_lifespan import LifespanManager

    bodies = _bodies(requests)
    variants: tuple[bool | None, ...] = (True, False, None)
    times: dict[tuple[str, bool | None], list[float]] = {}
    async with AsyncExitStack() as stack:
        apps = {}
        for metrics in variants:
            apps[metrics] = (
                await stack.enter_async_context(LifespanManager(_app(database_url, metrics)))
            ).app
            await _check_serves(apps[metrics], bodies["all"][0])
        for round_ in range(rounds):
            for mode, payloads in bodies.items():
                for metrics in variants if round_ % 2 == 0 else variants[::-1]:
                    times.setdefault((mode, metrics), []).append(await _time_block(apps[metrics], payloads))
    out: AppFigures = {}
    for mode in bodies:
        on, off = times[(mode, True)], times[(mode, False)]
        losses = [(a - b) / a * 100 for a, b in zip(on, off, strict=True)]
        out[mode] = (min(on), min(off), statistics.median(losses), min(times[(mode, None)]))
    return out


Figures = dict[tuple[str, bool], list[tuple[float, float]]]  # (req/s, server CPU µs per request)


def measure(servers: dict[bool, Server], rounds: int, args: argparse.Namespace, figures: Figures) -> None:
    """Each round loads both APIs back to back, in alternating order, so a burst of other work on
    the machine lands on one pair instead of biasing one side."""
    for server in servers.values():
        _load(server.port, "all", 2, args.connections)  # warm-up
    for round_ in range(rounds):
        for mode in MODES:
            for metrics in (True, False) if round_ % 2 == 0 else (False, True):
                server = servers[metrics]
                cpu = server.cpu_seconds()
                result = _load(server.port, mode, args.seconds, args.connections)
                per_request = (server.cpu_seconds() - cpu) / result["requests"] * 1e6
                figures.setdefault((mode, metrics), []).append((float(result["rps"]), per_request))


def _paired_loss(on: list[float], off: list[float]) -> float:
    """Median over rounds of the throughput lost with metrics on, each round's pair ran back to back."""
    return statistics.median((b - a) / b * 100 for a, b in zip(on, off, strict=True))


def report(
    figures: Figures, app: AppFigures, args: argparse.Namespace, costs: tuple[float, float, float]
) -> None:
    print(
        f"Flagship /flags with metrics on (FLAGSHIP_METRICS=1) and off (=0), 100 active flags;"
        f" over HTTP: {args.connections} connections, {args.rounds} rounds of {args.seconds:g} s each"
        f" over {args.pairs} fresh server pairs"
    )
    on_cost, off_cost, bare_cost = costs
    print(
        f"  SDK fast path around a no-op handler (in-process): {on_cost:.2f} µs metrics on,"
        f" {off_cost:.2f} µs off, {bare_cost:.2f} µs with no instrumentation at all"
        f" (metrics add {on_cost - off_cost:.2f} µs, request id + access log + metrics {on_cost - bare_cost:.2f} µs)"
    )
    for mode, name in MODES.items():
        on, off = figures[(mode, True)], figures[(mode, False)]
        rps_on, rps_off = [r for r, _ in on], [r for r, _ in off]
        cpu_on, cpu_off = statistics.median(c for _, c in on), statistics.median(c for _, c in off)
        app_on, app_off, app_loss, bare = app[mode]
        print(f"  {name}")
        print(
            f"    HTTP, throughput      on {statistics.median(rps_on):>8,.0f} req/s     off"
            f" {statistics.median(rps_off):>8,.0f} req/s     loss {_paired_loss(rps_on, rps_off):5.1f} %"
            f"   (medians; loss: median of paired rounds)"
        )
        print(
            f"      best rounds         on {max(rps_on):>8,.0f} req/s     off {max(rps_off):>8,.0f} req/s"
            f"     loss {(max(rps_off) - max(rps_on)) / max(rps_off) * 100:5.1f} %"
        )
        # CPU per request is what throughput is the inverse of when the API is CPU-bound, and it
        # does not move when other processes take CPU time from the API.
        print(
            f"    HTTP, server CPU      on {cpu_on:>8.1f} µs/req    off {cpu_off:>8.1f} µs/req"
            f"    loss {(cpu_on - cpu_off) / cpu_on * 100:5.1f} %   (median of rounds)"
        )
        print(
            f"    whole app in-process  on {app_on:>8.1f} µs/req    off {app_off:>8.1f} µs/req"
            f"    loss {app_loss:5.1f} %   (median of paired rounds; best rounds shown)"
        )
        print(
            f"      for reference: with no instrumentation at all {bare:.1f} µs/req"
            f" (everything observability adds: {app_on - bare:.1f} µs, {(app_on - bare) / app_on * 100:.1f} %)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--pairs", type=int, default=4, help="fresh on/off server pairs to spread the rounds over"
    )
    args = parser.parse_args()
    args.pairs = max(1, min(args.pairs, args.rounds))
    costs = in_process_cost()
    if PIN:
        os.sched_setaffinity(0, {1})  # the load generators, children of this process, run on CPU 1
    figures: Figures = {}
    # Two processes running the same code differ by several % (memory layout, hash seeds): fresh
    # pairs of servers, each pair loaded for its share of the rounds, average that out.
    for pair in range(args.pairs):
        with ExitStack() as stack:
            servers = {metrics: stack.enter_context(api(metrics)) for metrics in (True, False)}
            share = args.rounds // args.pairs + (1 if pair < args.rounds % args.pairs else 0)
            measure(servers, share, args, figures)
            if pair == args.pairs - 1:
                if PIN:
                    os.sched_setaffinity(0, {0})
                app = asyncio.run(app_cost(servers[True].database_url))
    report(figures, app, args, costs)


if __name__ == "__main__":
    main()
