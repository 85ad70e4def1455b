"""Headless Chromium through Selenium, using Debian's chromium and chromedriver: Selenium Manager is
never asked to download anything (explicit driver path, offline)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_HINT = (
    "browser tests need Debian's chromium and chromium-driver: "
    "`apt-get install chromium chromium-driver` (make test installs them when run as root)"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def browser_missing() -> str | None:
    """Why no browser test can run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(Path(path).name)):
            return INSTALL_HINT
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "browser tests need the `selenium` package (the dev extra: make .venv/.installed-dev)"
    return None


def chrome(width: int = 1280, height: int = 900) -> tuple[Any, Path]:
    """(driver, profile dir): a fresh profile each time, so no state leaks between tests."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not reach the network
    profile = Path(tempfile.mkdtemp(prefix="flagship-chrome-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if os.path.exists(CHROMIUM) else str(shutil.which("chromium"))
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver_path = CHROMEDRIVER if os.path.exists(CHROMEDRIVER) else str(shutil.which("chromedriver"))
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    if width < 500:
        # A desktop window cannot be narrower than ~500 px: emulate the phone's viewport instead.
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return driver, profile
