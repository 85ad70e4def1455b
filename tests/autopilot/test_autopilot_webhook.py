"""The decision webhook against a real local HTTP server that fails first, then succeeds: Temporal
retries the delivery with the same delivery id, and the failure is visible in the audit trail."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from settings import Settings
from tests.api.test_approvals import eventually
from tests.autopilot.test_autopilot_workflow import GUARD, USERS, evaluate, launched, seed, trail
from tests.support.api_client import ApiClient

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


class Receiver:
    """Answers 500 to the first `failures` deliveries, then 200; keeps what it was sent."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[str | None, dict[str, Any], int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 500 if len(receiver.received) < receiver.failures else 200
                receiver.received.append((self.headers.get("X-Flagship-Delivery"), body, status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/flagship"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver(failures=1)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


async def test_the_decision_is_delivered_after_a_failure(
    api: ApiClient, settings: Settings, receiver: Receiver
) -> None:
    rules = {
        "guardrails": [{"metric": GUARD, "action": "pause"}],
        "notify": {"webhook_url": receiver.url},
    }
    exp = await launched(api, settings, rules)
    await seed(api, settings, exp, rates={"refund": {"control": 0.05, "test": 0.25}}, users=USERS)
    decision = await evaluate(api, exp["id"])
    assert decision["action"] == "pause"

    async def delivered() -> bool:
        return any(status == 200 for _, _, status in receiver.received)

    await eventually(delivered, timeout=30)
    ids = {delivery for delivery, _, _ in receiver.received}
    assert len(receiver.received) == 2 and len(ids) == 1  # one delivery, retried once
    body = receiver.received[-1][1]
    assert body["outcome"] == "applied" and body["delivery_id"] in ids
    assert body["decision"]["action"] == "pause" and body["decision"]["rule"] == "guardrail"
    assert body["experiment"]["id"] == exp["id"]
    failures = [e for e in await trail(api, exp["id"]) if e["operation"] == "notify"]
    assert len(failures) == 1 and failures[0]["outcome"] == "failed"
    assert "answered 500" in failures[0]["detail"]
