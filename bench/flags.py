"""Benchmark of the SDK hot paths: `/flags` req/s with p50/p99, and `/batch` ingestion in events/s.

    .venv/bin/python bench/flags.py [--seconds 10] [--connections 64] [--workers 1]
    .venv/bin/python bench/flags.py --metrics-overhead [--rounds 10]   # metrics on vs off, paired

Starts the real thing: `python -m db upgrade` on a fresh SQLite file, `python -m api` (uvicorn, uvloop,
httptools) with TEMPORAL_ADDRESS on a closed port (/flags needs no Temporal), 100 active flags created
through the API. The load comes from a second process: a raw asyncio HTTP/1.1 client over keep-alive
connections. Prints figures; it is not a test.
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
from pathlib import Path
from typing import Any

# Run as a script from anywhere: the project root must be importable for the in-process figures.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "phc_benchmarkprojecttoken0000000000000000000"
KEY = "phx_benchmarkpersonalkey00000000000000000000000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flag_filters(n: int) -> dict[str, Any]:
    """100 flags in the proportions a product team has: rollouts, experiments, targeting, holdouts."""
    rollout = [0, 1, 5, 10, 25, 33, 50, 75, 99.9, 100][n % 10]
    split = [[50, 50], [34, 33, 33], [25, 25, 25, 25]][n % 3]
    variants = [{"key": f"v{i}", "rollout_percentage": p} for i, p in enumerate(split)]
    plan = {"key": "plan", "operator": "exact", "value": ["pro", "enterprise"], "type": "person"}
    email = {"key": "email", "operator": "icontains", "value": "@example.com", "type": "person"}
    if n < 40:
        return {"groups": [{"properties": [], "rollout_percentage": rollout}]}
    if n < 70:
        return {
            "groups": [{"properties": [], "rollout_percentage": 100}],
            "multivariate": {"variants": variants},
        }
    if n < 90:
        return {
            "groups": [
                {"properties": [email], "rollout_percentage": rollout},
                {"properties": [plan], "rollout_percentage": 50},
            ]
        }
    return {
        "groups": [{"properties": [], "rollout_percentage": 100}],
        "multivariate": {"variants": variants},
        "holdout": {"id": n, "exclusion_percentage": 10},
    }


def person(n: int) -> dict[str, Any]:
    return {
        "email": f"user{n}@{'example.com' if n % 2 else 'corp.io'}",
        "plan": ["free", "pro"][n % 2],
        "age": n % 60,
    }


# ------------------------------------------------------------------------------------------ load process


def http_request(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bool:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return head[9:12] == b"200"


async def _connection(
    port: int, requests: Any, deadline: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    while clock() < deadline:
        request = next(requests)
        started = clock()
        if not await _exchange(reader, writer, request):
            errors.append(1)
        latencies.append(clock() - started)
    writer.close()


def _flags_requests(mode: str, keys: list[str]) -> Any:
    bodies = []
    for n in range(5000):
        payload: dict[str, Any] = {
            "api_key": TOKEN,
            "distinct_id": f"user-{n}",
            "person_properties": person(n),
        }
        if mode == "one":
            payload["flag_keys_to_evaluate"] = [keys[n % len(keys)]]
        bodies.append(http_request("/flags/?v=2", json.dumps(payload).encode()))
    while True:
        yield from bodies


def _batch_requests(size: int) -> Any:
    batch = 0
    while True:
        batch += 1
        events = ",".join(
            f'{{"event":"bench_{i % 20}","distinct_id":"user-{i}","uuid":"{batch:08x}-0000-4000-8000-{i:012x}",'
            f'"timestamp":"2026-01-01T00:00:00+00:00","properties":{{"$lib":"bench","amount":{i},"plan":"pro"}}}}'
            for i in range(size)
        )
        body = f'{{"api_key":"{TOKEN}","sent_at":"2026-01-01T00:00:00+00:00","batch":[{events}]}}'
        yield http_request("/batch/", body.encode())


async def run_load(port: int, kind: str, seconds: float, connections: int, extra: str) -> dict[str, Any]:
    if kind == "batch":
        requests = _batch_requests(int(extra))
    else:
        requests = _flags_requests(kind, [f"flag-{n}" for n in range(100)])
    latencies: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, requests, deadline, latencies, errors) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[int(len(ordered) * 0.99)],
        "mean_ms": 1000 * statistics.fmean(ordered),
    }


def load_main(argv: list[str]) -> None:
    port, kind, seconds, connections, extra = int(argv[0]), argv[1], float(argv[2]), int(argv[3]), argv[4]
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the stock loop only makes the load generator a little slower
        pass
    print(json.dumps(asyncio.run(run_load(port, kind, seconds, connections, extra))))


# ------------------------------------------------------------------------------------------ orchestration


def _env(data_dir: Path, port: int, workers: int) -> dict[str, str]:
    return os.environ | {
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'bench.db'}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # closed: nothing here needs Temporal
        "BOOTSTRAP_PERSONAL_API_KEY": KEY,
        "BOOTSTRAP_PROJECT_API_TOKEN": TOKEN,
        "LOG_LEVEL": "WARNING",  # the flag set-up's access log lines are not figures
    }


def _wait_for_flags(port: int, count: int) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            r = httpx.post(f"http://127.0.0.1:{port}/flags/?v=2", json={"api_key": TOKEN, "distinct_id": "w"})
            if r.status_code == 200 and len(r.json()["flags"]) >= count:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not serve the flags in time")


def _create_flags(port: int) -> None:
    import httpx

    _wait_for_flags(port, 0)
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"}
    ) as client:
        for n in range(100):
            r = client.post(
                "/api/projects/1/feature_flags/", json={"key": f"flag-{n}", "filters": flag_filters(n)}
            )
            r.raise_for_status()
    _wait_for_flags(port, 100)


def _load(port: int, kind: str, seconds: float, connections: int, extra: str = "") -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "load", str(port), kind, str(seconds), str(connections), extra or "-"],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout))


def in_process_cost() -> tuple[float, float]:
    """µs per flag of the pure evaluation, and µs per whole /flags answer (evaluate + render)."""
    from api.flag_cache import build_project
    from api.routes.flags_eval import render_detailed
    from db.tables import FeatureFlag
    from domain.flag_evaluation import evaluate_flags

    rows = [FeatureFlag(id=n, team_id=1, key=f"flag-{n}", filters=flag_filters(n)) for n in range(100)]
    project = build_project(1, TOKEN, None, rows, {})
    ids = [(f"user-{n}", person(n)) for n in range(2000)]
    evaluation = answer = float("inf")
    for _ in range(5):  # best of five: the figure is the code's cost, not the machine's noise
        started = time.perf_counter()
        for did, props in ids:
            evaluate_flags(project.active, did, person_properties=props)
        evaluation = min(evaluation, (time.perf_counter() - started) / (len(ids) * len(rows)) * 1e6)
        started = time.perf_counter()
        for did, props in ids:
            render_detailed(project, evaluate_flags(project.active, did, person_properties=props))
        answer = min(answer, (time.perf_counter() - started) / len(ids) * 1e6)
    return evaluation, answer


def _report(name: str, result: dict[str, Any], unit: str = "req/s", factor: int = 1) -> None:
    rate = result["rps"] * factor
    print(
        f"  {name:<34} {rate:>10,.0f} {unit:<9} p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms"
        f"  ({result['requests']:,} requests, {result['errors']} errors)"
    )


def _measure(port: int, args: argparse.Namespace) -> None:
    evaluation, answer = in_process_cost()
    print(f"Flagship bench: {os.cpu_count()} CPUs, API workers={args.workers}, SQLite, 100 active flags")
    print(
        f"  in-process evaluation              {evaluation:10.2f} µs/flag  ({answer:,.0f} µs per 100-flag answer)"
    )
    _load(port, "all", 2, args.connections)  # warm-up
    _report("/flags all 100 flags", _load(port, "all", args.seconds, args.connections))
    # Closed-loop latency is queueing (connections / throughput); fewer connections show the floor.
    _report("/flags all 100 flags, 8 connections", _load(port, "all", args.seconds, 8))
    _report("/flags one flag (get_feature_flag)", _load(port, "one", args.seconds, args.connections))
    batch = _load(port, "batch", args.seconds, args.batch_connections, str(args.batch_size))
    _report(f"/batch {args.batch_size}-event batches", batch, "events/s", args.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="WEB_CONCURRENCY of the API")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-connections", type=int, default=8)
    parser.add_argument(
        "--metrics-overhead",
        action="store_true",
        help="instead: /flags with metrics on and off, paired rounds (bench/flags_metrics_overhead.py)",
    )
    args, rest = parser.parse_known_args()
    if args.metrics_overhead:
        from bench import flags_metrics_overhead

        sys.argv = [sys.argv[0], *rest]
        flags_metrics_overhead.main()
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    with tempfile.TemporaryDirectory(prefix="flagship-bench-") as tmp:
        port = free_port()
        env = _env(Path(tmp), port, args.workers)
        subprocess.run(
            [sys.executable, "-m", "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        api = subprocess.Popen([sys.executable, "-m", "api"], cwd=ROOT, env=env)
        try:
            _create_flags(port)
            _measure(port, args)
        finally:
            api.terminate()
            api.wait(15)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        load_main(sys.argv[2:])
    else:
        main()
