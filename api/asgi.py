"""ASGI entry point for uvicorn (`api.asgi:app`); settings come from the environment."""

from api.app import create_app
from observability.logs import configure_logging

configure_logging()  # also in each of uvicorn's WEB_CONCURRENCY processes
app = create_app()
