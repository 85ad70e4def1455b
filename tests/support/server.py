"""The app served by uvicorn on 127.0.0.1 over real HTTP, in a thread with its own event loop: for
tests whose subject is the HTTP exchange itself (SDKs, streaming bodies, a stalled event loop)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from tests.support.postgres import free_port


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Yields the base URL (`http://127.0.0.1:<free port>`) while the server runs."""
    port = free_port()
    # ws="none": no websocket stack to import (its deprecation warnings would be errors here).
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
