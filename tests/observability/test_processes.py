"""The real processes: `python worker.py` serves its metrics and the Temporal SDK's on
WORKER_METRICS_PORT and logs JSON lines; `python -m api` exports its Temporal client's metrics, and
with WEB_CONCURRENCY=2 answers /metrics for both of its processes."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from db.bootstrap import bootstrap
from db.engine import make_async_engine, make_sessionmaker
from tests.support.bootstrap import run_bootstrap
from tests.support.processes import base_env, free_port, process, wait_for

pytestmark = pytest.mark.slow

TOKEN = "phc_observabilitytesttoken000000000000000000"


def families(text: str) -> dict[str, float]:
    """Sample name (with its labels flattened away) -> summed value."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def test_worker_serves_its_and_the_sdks_metrics(
    tmp_path: Path, sqlite_url: str, temporal_env: WorkflowEnvironment
) -> None:
    port = free_port()
    env = base_env(tmp_path, sqlite_url) | {
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "WORKER_METRICS_PORT": str(port),
    }
    log = tmp_path / "worker.log"
    with process([sys.executable, "worker.py"], env, log) as proc:
        r = wait_for(f"http://127.0.0.1:{port}/metrics", proc, log)
        names = families(r.text)
        # Pollers start right away; the SDK's request counters come with the first polls.
        deadline = time.monotonic() + 20
        while "temporal_request_total" not in names and time.monotonic() < deadline:
            time.sleep(0.5)
            names = families(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    assert "temporal_request_total" in names, sorted(names)
    assert [name for name in names if name.startswith("temporal_")], sorted(names)
    assert "process_cpu_seconds_total" in names
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(line["logger"] == "flagship.worker" for line in lines), log.read_text()


async def test_api_processes_share_their_metrics(tmp_path: Path, sqlite_url: str) -> None:
    engine = make_async_engine(sqlite_url)
    async with make_sessionmaker(engine)() as session:
        await bootstrap(session, personal_api_key=None, project_api_token=TOKEN)
        await session.commit()
    await engine.dispose()
    port = free_port()
    env = base_env(tmp_path, sqlite_url) | {
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # closed: /flags and /metrics need no Temporal
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "api.log"
    with process([sys.executable, "-m", "api"], env, log) as proc:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/metrics", proc, log)
        with httpx.Client(base_url=base) as client:  # fresh connections spread over both processes
            for n in range(20):
                r = httpx.post(f"{base}/flags/?v=2", json={"api_key": TOKEN, "distinct_id": f"u{n}"})
                assert r.status_code in (200, 503), r.text  # 503 while a process still loads flags
            counts = set()
            for _ in range(6):
                scraped = families(client.get("/metrics", headers={"Connection": "close"}).text)
                counts.add(scraped.get("flagship_flag_evaluations_total"))
    assert counts == {20.0}, counts


async def test_api_exports_its_temporal_client_metrics(
    tmp_path: Path, sqlite_url: str, temporal_env: WorkflowEnvironment
) -> None:
    key = "phx_observabilitytestkey0000000000000000000000"
    creds = await run_bootstrap(sqlite_url, key, TOKEN)
    assert creds is not None
    port = free_port()
    env = base_env(tmp_path, sqlite_url) | {
        "PORT": str(port),
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": temporal_env.client.namespace,
    }
    base = f"http://127.0.0.1:{port}"
    with (
        process([sys.executable, "worker.py"], env, tmp_path / "worker.log"),
        process([sys.executable, "-m", "api"], env, tmp_path / "api.log") as api,
    ):
        wait_for(f"{base}/_health", api, tmp_path / "api.log")
        r = httpx.post(
            f"{base}/api/projects/{creds.project_id}/experiments/",
            json={"name": "client metrics", "feature_flag_key": "client-metrics"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        text = httpx.get(f"{base}/metrics").text
    operations = {
        sample.labels.get("operation")
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("temporal_request_total", "temporal_long_request_total")
    }
    # The create is an Update-With-Start (one multi-operation RPC, counted as a long request: it
    # waits for the update's result).
    assert "ExecuteMultiOperation" in operations, operations
