"""REST lifecycle latency and throughput next to a bare Temporal update, on the same server.

Starts a Temporal dev server with a persistence file, `python worker.py` and `python -m api`
(as `make run` does), then measures launch/pause/resume/end through HTTP at 1 and 16 concurrent
clients, and in the same run a no-op workflow update (the floor any update-based design pays) and
the floors of a transition's history: the same update with a no-op local activity, and with the
status search-attribute upsert too (bench/noop_workflow.py).

    .venv/bin/python bench/lifecycle.py [--cycles 6] [--clients 1 16] [--rounds 3]

Each concurrency level runs `--rounds` paired rounds (bare, REST, floors back to back); latencies
are pooled, the throughput ratio is the median of the rounds' own ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.noop_workflow import NoopWorkflow, noop_activity  # noqa: E402
from workflows.search_attributes import cli_flags  # noqa: E402

OPERATIONS = ("launch", "pause", "resume", "end")
FLOORS = ("touch_with_activity", "touch_with_status")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} never opened")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Services:
    base_url: str
    address: str
    key: str
    pids: dict[str, int]  # server, worker, api

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}


@contextmanager
def services(data_dir: Path) -> Iterator[Services]:
    temporal_port, api_port = free_port(), free_port()
    binary = str(Path(sys.executable).parent / "temporal")
    procs = [
        subprocess.Popen(
            [binary, "server", "start-dev", "--headless", "--port", str(temporal_port),
             "--db-filename", str(data_dir / "temporal.sqlite"), "--log-level", "error", *cli_flags()],
        )
    ]  # fmt: skip
    env = dict(
        os.environ,
        DATA_DIR=str(data_dir),
        PORT=str(api_port),
        TEMPORAL_ADDRESS=f"127.0.0.1:{temporal_port}",
        BOOTSTRAP_PERSONAL_API_KEY="phx_bench_key",
        BOOTSTRAP_PROJECT_API_TOKEN="phc_bench_token",
    )
    try:
        wait_port(temporal_port)
        subprocess.run(
            [sys.executable, "-m", "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True
        )
        procs.append(
            subprocess.Popen([sys.executable, "worker.py"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        )
        # The access log is written (and costs what it costs) but kept off the figures.
        procs.append(
            subprocess.Popen([sys.executable, "-m", "api"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        )
        wait_port(api_port)
        pids = dict(zip(("server", "worker", "api"), (p.pid for p in procs), strict=True))
        yield Services(f"http://127.0.0.1:{api_port}", f"127.0.0.1:{temporal_port}", "phx_bench_key", pids)
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=20)


async def rest_client(http: httpx.AsyncClient, index: int, cycles: int, out: dict[str, list[float]]) -> int:
    r = await http.post(
        "/api/projects/1/experiments/",
        json={"name": f"bench {index}", "feature_flag_key": f"bench-{index}-{uuid.uuid4().hex[:6]}"},
    )
    r.raise_for_status()
    eid = r.json()["id"]
    done = 0
    for _ in range(cycles):
        for op in (*OPERATIONS, "reset"):
            started = time.perf_counter()
            r = await http.post(f"/api/projects/1/experiments/{eid}/{op}/")
            elapsed = time.perf_counter() - started
            if r.status_code != 200:
                raise RuntimeError(f"{op}: {r.status_code} {r.text}")
            if op in OPERATIONS:
                out[op].append(elapsed)
            done += 1
    return done


async def run_rest(
    base_url: str, key: str, clients: int, cycles: int
) -> tuple[dict[str, list[float]], float]:
    out: dict[str, list[float]] = {op: [] for op in OPERATIONS}
    limits = httpx.Limits(max_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60) as http:
        started = time.perf_counter()
        counts = await asyncio.gather(*(rest_client(http, i, cycles, out) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return out, sum(counts) / elapsed


async def run_bare(
    client: Client, clients: int, calls: int, update: str = "touch"
) -> tuple[list[float], float]:
    """`update` of NoopWorkflow: the bare one, or a floor (bench/noop_workflow.py)."""
    latencies: list[float] = []
    task_queue = f"bench-{uuid.uuid4().hex[:8]}"

    async def one(index: int) -> None:
        handle = await client.start_workflow(
            NoopWorkflow.run, id=f"bench-noop-{task_queue}-{index}", task_queue=task_queue
        )
        for _ in range(calls):
            started = time.perf_counter()
            await handle.execute_update(update, result_type=int)
            latencies.append(time.perf_counter() - started)
        await handle.terminate()

    worker = Worker(client, task_queue=task_queue, workflows=[NoopWorkflow], activities=[noop_activity])
    async with worker:
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return latencies, clients * calls / elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass
class Phase:
    """One kind of call measured over the rounds: latencies pooled, throughput and CPU per round."""

    latencies: list[float] = field(default_factory=list)
    throughputs: list[float] = field(default_factory=list)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per process, summed over the rounds
    calls: int = 0

    def add(self, latencies: list[float], throughput: float, calls: int, cpu: dict[str, float]) -> None:
        self.latencies += latencies
        self.throughputs.append(throughput)
        self.calls += calls
        for name, seconds in cpu.items():
            self.cpu_ms[name] = self.cpu_ms.get(name, 0.0) + seconds * 1000

    def summary(self) -> dict[str, object]:
        return {
            "p50_ms": round(pct(self.latencies, 0.5), 1),
            "p99_ms": round(pct(self.latencies, 0.99), 1),
            "per_s": round(statistics.median(self.throughputs), 1),
            "cpu_ms_per_call": {name: round(ms / self.calls, 2) for name, ms in self.cpu_ms.items()},
        }


def p50_ratio(phase: Phase, baseline: Phase) -> float:
    return round(pct(phase.latencies, 0.5) / pct(baseline.latencies, 0.5), 2)


def paired_ratio(phase: Phase, baseline: Phase) -> float:
    """The median of each round's throughput ratio (a paired comparison), not a ratio of medians."""
    ratios = [p / b for p, b in zip(phase.throughputs, baseline.throughputs, strict=True)]
    return round(statistics.median(ratios), 2)


async def measure_round(
    svc: Services, client: Client, clients: int, cycles: int, phases: dict[str, Phase]
) -> dict[str, list[float]]:
    """Bare update, REST, then the floors, back to back: what the machine does meanwhile (a shared
    host's load changes by the minute) weighs on all of them alike."""
    rest_by_operation: dict[str, list[float]] = {}
    for name in ("bare", "rest", *FLOORS):
        before = svc.cpu() | {"bench": cpu_seconds(os.getpid())}
        if name == "rest":
            by_operation, throughput = await run_rest(svc.base_url, svc.key, clients, cycles)
            latencies = [v for values in by_operation.values() for v in values]
            rest_by_operation = by_operation
            calls = len(latencies) * 5 // 4  # resets are transitions too, though not timed
        else:
            update = "touch" if name == "bare" else name
            latencies, throughput = await run_bare(client, clients, calls=cycles * 5, update=update)
            calls = len(latencies)
        after = svc.cpu() | {"bench": cpu_seconds(os.getpid())}
        # The bare update and the floors run their worker in this process (with their client);
        # REST runs in the server, worker and API processes (this process is its HTTP client).
        keys = ("server", "worker", "api") if name == "rest" else ("server", "bench")
        cpu = {("worker_and_client" if k == "bench" else k): after[k] - before[k] for k in keys}
        phases[name].add(latencies, throughput, calls, cpu)
    return rest_by_operation


async def main(cycles: int, client_counts: tuple[int, ...] = (1, 16), rounds: int = 3) -> dict[str, object]:
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp, services(Path(tmp)) as svc:
        client = await Client.connect(svc.address, data_converter=pydantic_data_converter)
        for clients in client_counts:
            phases = {name: Phase() for name in ("bare", "rest", *FLOORS)}
            by_operation: dict[str, list[float]] = {op: [] for op in OPERATIONS}
            for _ in range(rounds):
                for op, values in (await measure_round(svc, client, clients, cycles, phases)).items():
                    by_operation[op] += values
            bare, rest = phases["bare"], phases["rest"]
            floor = phases[FLOORS[-1]]
            line: dict[str, object] = {
                "p50_ratio": p50_ratio(rest, bare),
                "throughput_ratio": paired_ratio(rest, bare),
                "throughput_ratio_per_round": [
                    round(r / b, 2) for r, b in zip(rest.throughputs, bare.throughputs, strict=True)
                ],
                # The same against the status floor: what Flagship adds beyond what Temporal must do.
                "p50_ratio_to_floor": p50_ratio(rest, floor),
                "throughput_ratio_to_floor": paired_ratio(rest, floor),
                "floor_throughput_ratio": paired_ratio(floor, bare),
                "per_operation_p50_ms": {
                    op: round(statistics.median(v) * 1000, 1) for op, v in by_operation.items()
                },
                **{name: phase.summary() for name, phase in phases.items()},
            }
            report[f"{clients}_clients"] = line
            print(f"{clients:>2} clients: {json.dumps(line)}", flush=True)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--cycles", type=int, default=6, help="launch-pause-resume-end-reset cycles per client and round"
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16], help="concurrency levels")
    parser.add_argument("--rounds", type=int, default=3, help="paired rounds of every measurement")
    args = parser.parse_args()
    asyncio.run(main(args.cycles, tuple(args.clients), args.rounds))
