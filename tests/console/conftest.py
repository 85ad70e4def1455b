"""One real Flagship (`run.py` on a pseudo-terminal) for the console's tests, and headless
Chromium drivers for the browser tests (skipped, saying how to install it, when absent)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.browser import browser_missing, chrome
from tests.console.seed import Api
from tests.console.stack import Flagship, launch

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "console-screenshots"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    reason = browser_missing()
    if reason:
        terminalreporter.write_line(f"web console: browser tests skipped; {reason}", yellow=True)


@pytest.fixture(scope="session")
def flagship(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flagship]:
    running = launch(tmp_path_factory.mktemp("console"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def admin(flagship: Flagship) -> Api:
    creds = flagship.credentials()
    return Api(flagship.base_url, creds["personal_api_key"], creds["project_api_token"], creds["project_id"])


@pytest.fixture(scope="session")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    print(f"\nconsole screenshots: {SCREENSHOTS}")
    return SCREENSHOTS


@pytest.fixture
def new_browser() -> Iterator[Callable[..., Any]]:
    """Opens fresh headless Chromium windows (own profile each); all are closed after the test."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    opened: list[tuple[Any, Path]] = []

    def open_one(width: int = 1280, height: int = 900) -> Any:
        driver, profile = chrome(width, height)
        opened.append((driver, profile))
        return driver

    yield open_one
    for driver, profile in opened:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
