"""`python -m api`: serve the API with uvicorn on HOST:PORT (WEB_CONCURRENCY processes)."""

from __future__ import annotations

import uvicorn

from observability.logs import configure_logging
from observability.metrics import prepare_multiprocess
from settings import load_settings

KEEP_ALIVE_SECONDS = 75


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    prepare_multiprocess(settings.web_concurrency)  # WEB_CONCURRENCY processes share /metrics
    uvicorn.run(
        "api.asgi:app",
        host=settings.host,
        port=settings.port,
        workers=settings.web_concurrency if settings.web_concurrency > 1 else None,
        log_level="warning",
        log_config=None,  # uvicorn's loggers go through ours (observability/logs.py)
        access_log=False,
        # A worker-process restart must not leave half a request: uvicorn drains first.
        timeout_graceful_shutdown=10,
        # Idle keep-alive connections are closed by the client first: uvicorn's 5 s equals httpx's
        # pool expiry, so a request sent as the server closed the connection was lost ("server
        # disconnected without sending a response"); load balancers keep idle connections 60 s.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


if __name__ == "__main__":
    main()
