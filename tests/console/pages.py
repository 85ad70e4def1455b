"""Driving the console the way a person does: through its visible controls (Selenium)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

T = TypeVar("T")
TIMEOUT = 30.0  # a workflow update or a recalculation on 2 busy cores


def until(check: Callable[[], T | None], timeout: float = TIMEOUT, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (StaleElementReferenceException, WebDriverException, LookupError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout:.0f} s (last error: {last})")


def css(driver: WebDriver | WebElement, selector: str) -> list[WebElement]:
    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def one(driver: WebDriver | WebElement, selector: str, timeout: float = TIMEOUT) -> WebElement:
    def first() -> WebElement | None:
        found = css(driver, selector)
        return found[0] if found else None

    return until(first, timeout, f"element {selector!r}")


def text_of(driver: WebDriver, selector: str) -> str:
    return str(one(driver, selector).text)


def sign_in_with_key(driver: WebDriver, base_url: str, key: str) -> None:
    driver.get(f"{base_url}/")
    field = one(driver, "#api-key")
    field.send_keys(key)
    field.send_keys(Keys.ENTER)


def signed_in(driver: WebDriver) -> bool:
    return bool(css(driver, "#sign-out"))


def stored_key(driver: WebDriver) -> Any:
    return driver.execute_script("return sessionStorage.getItem('flagship.personal_api_key')")


def open_experiment(driver: WebDriver, base_url: str, experiment_id: int) -> None:
    url = f"{base_url}/#/experiments/{experiment_id}"
    if driver.current_url == url:
        driver.refresh()  # the same address again is no navigation at all
    else:
        driver.get(url)
    main = driver.find_element(By.ID, "main")
    try:
        until(lambda: main.get_attribute("data-rendered") == "experiment", what="page")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the page shows: {main.text[:500]!r}") from None


def press(driver: WebDriver, element: WebElement) -> None:
    """Keyboard only: focus the control, then Enter."""
    driver.execute_script("arguments[0].focus()", element)
    element.send_keys(Keys.ENTER)


def act(driver: WebDriver, action: str, fill: Callable[[], None] | None = None) -> None:
    """Click a lifecycle action and confirm its dialog with the keyboard."""
    press(driver, one(driver, f"#actions [data-action='{action}']"))
    confirm = one(driver, "dialog[open] #confirm-action")
    if fill is not None:
        fill()
    press(driver, confirm)


def badge(driver: WebDriver) -> str:
    return str(one(driver, ".exp-head .badge").get_attribute("data-status"))


def raw(cell: WebElement) -> Any:
    return json.loads(cell.get_attribute("data-raw") or "null")
