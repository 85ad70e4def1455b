"""Results in the browser equal the API's: a seeded experiment with three metrics over 30 days;
the table's raw numbers against `POST …/query/`, the charts' series, the recalculation started
from the page, and the exposures column of the list against `ExperimentExposureQuery`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.console.pages import css, one, open_experiment, press, raw, until
from tests.console.seed import METRICS, Api, seeded_experiment
from tests.console.stack import Flagship
from tests.console.test_browser_experiments import signed_in_browser

RECALCULATION_TIMEOUT = 180.0  # 31 days of 3 metrics on 2 busy cores


@pytest.fixture(scope="module")
def seeded(admin: Api) -> dict[str, Any]:
    experiment = seeded_experiment(admin, "Checkout redesign", "checkout-redesign")
    # Two metrics get their daily results through the API; the page recalculates the third.
    admin.recalculate_all({**experiment, "metrics": experiment["metrics"][:2]}, timeout=RECALCULATION_TIMEOUT)
    return experiment


def query(admin: Api, body: dict[str, Any]) -> dict[str, Any]:
    return dict(admin.call("POST", "query/", {"query": body}))


def value(variant: dict[str, Any], metric_type: str) -> float:
    denominator = variant["denominator_sum"] if metric_type == "ratio" else variant["number_of_samples"]
    return float(variant["sum"] / denominator)


def cells(row: WebElement) -> dict[str, Any]:
    return {
        str(c.get_attribute("data-field")): raw(c)
        for c in row.find_elements(By.CSS_SELECTOR, "td[data-field]")
    }


def check_table(card: WebElement, metric: dict[str, Any], result: dict[str, Any]) -> None:
    rows = {
        str(r.get_attribute("data-variant")): cells(r)
        for r in card.find_elements(By.CSS_SELECTOR, "table.results tbody tr")
    }
    baseline = result["baseline"]
    assert rows[baseline["key"]] == {
        "number_of_samples": baseline["number_of_samples"],
        "value": value(baseline, metric["metric_type"]),
    }
    for variant in result["variant_results"]:
        shown = rows[variant["key"]]
        assert shown["number_of_samples"] == variant["number_of_samples"]
        assert shown["chance_to_win"] == variant["chance_to_win"]
        assert shown["credible_interval"] == variant["credible_interval"]
        assert shown["significant"] == variant["significant"]
        mine, theirs = value(variant, metric["metric_type"]), value(baseline, metric["metric_type"])
        assert shown["value"] == mine and shown["delta"] == pytest.approx(mine / theirs - 1, rel=1e-12)


def series(card: WebElement, chart: str) -> list[str]:
    return [
        str(g.get_attribute("data-series"))
        for g in card.find_elements(By.CSS_SELECTOR, f"[data-chart='{chart}'] svg g.series")
    ]


def rendered(browser: WebDriver) -> bool:
    cards = css(browser, "section.metric")
    return len(cards) == 3 and all(c.get_attribute("data-rendered") == "true" for c in cards)


def test_the_results_equal_the_query_api_and_every_chart_has_a_series_per_variant(
    flagship: Flagship, admin: Api, seeded: dict[str, Any], new_browser: Callable[..., Any], screenshots: Path
) -> None:
    browser = signed_in_browser(flagship, new_browser)
    open_experiment(browser, flagship.base_url, seeded["id"])
    until(lambda: rendered(browser), what="three metric cards")
    for card, metric in zip(css(browser, "section.metric"), seeded["metrics"], strict=True):
        assert card.get_attribute("data-metric-uuid") == metric["uuid"]
        result = query(admin, {"kind": "ExperimentQuery", "experiment_id": seeded["id"], "metric": metric})
        check_table(card, metric, result)
        assert series(card, "delta") == [v["key"] for v in result["variant_results"]]
    exposures = query(admin, {"kind": "ExperimentExposureQuery", "experiment_id": seeded["id"]})
    box = one(browser, "[data-chart='exposures']")
    until(lambda: box.get_attribute("data-rendered") == "true", what="exposures chart")
    assert series(one(browser, "#exposures"), "exposures") == [s["variant"] for s in exposures["timeseries"]]
    first = css(browser, "section.metric")[0]
    until(lambda: series(first, "cumulative") == ["test"], what="cumulative chart of a recalculated metric")
    assert one(first, "[data-chart='cumulative']").get_attribute("data-days") == "31"
    browser.execute_script("arguments[0].scrollIntoView()", first)
    browser.save_screenshot(str(screenshots / "results-1280.png"))
    browser.execute_script("document.getElementById('activity').scrollIntoView()")
    browser.save_screenshot(str(screenshots / "experiment-bottom-1280.png"))

    phone = signed_in_browser(flagship, new_browser, width=390)
    open_experiment(phone, flagship.base_url, seeded["id"])
    until(lambda: rendered(phone), what="metric cards on a phone")
    phone.execute_script("document.getElementById('results').scrollIntoView()")
    phone.save_screenshot(str(screenshots / "results-390.png"))


def test_a_recalculation_started_from_the_page_shows_its_progress_then_the_chart(
    flagship: Flagship, seeded: dict[str, Any], new_browser: Callable[..., Any], screenshots: Path
) -> None:
    browser = signed_in_browser(flagship, new_browser)
    open_experiment(browser, flagship.base_url, seeded["id"])
    until(lambda: rendered(browser), what="three metric cards")
    third = css(browser, "section.metric")[2]
    assert not series(third, "cumulative")  # never calculated yet
    press(browser, one(third, "[data-recalculate]"))
    until(
        lambda: (
            third.find_element(By.CSS_SELECTOR, ".timeseries").get_attribute("data-state")
            in ("pending", "in_progress", "idle")
        ),
        what="recalculation started",
    )
    until(
        lambda: (
            series(third, "cumulative") == ["test"]
            and third.find_element(By.CSS_SELECTOR, ".timeseries").get_attribute("data-state") == "idle"
        ),
        RECALCULATION_TIMEOUT,
        "the recalculated chart",
    )
    assert "31 of 31 days" in third.find_element(By.CSS_SELECTOR, ".ts-status").text


def test_the_list_shows_the_same_exposures_as_the_exposure_query(
    flagship: Flagship, admin: Api, seeded: dict[str, Any], new_browser: Callable[..., Any]
) -> None:
    browser = signed_in_browser(flagship, new_browser)
    browser.get(f"{flagship.base_url}/#/?search=Checkout%20redesign")
    cell = one(browser, f"tr[data-experiment-id='{seeded['id']}'] td[data-exposures]")
    exposures = query(admin, {"kind": "ExperimentExposureQuery", "experiment_id": seeded["id"]})
    assert raw_exposures(cell) == exposures["total_exposures"]


def raw_exposures(cell: WebElement) -> Any:
    import json

    return json.loads(cell.get_attribute("data-exposures") or "null")


def test_results_without_enough_exposures_say_so_in_a_banner(
    flagship: Flagship, admin: Api, new_browser: Callable[..., Any]
) -> None:
    exp = admin.experiment(name="Too early to tell", feature_flag_key="too-early", metrics=[METRICS[0]])
    admin.call("POST", f"experiments/{exp['id']}/launch/", {})
    browser = signed_in_browser(flagship, new_browser)
    open_experiment(browser, flagship.base_url, exp["id"])
    banner = one(browser, "section.metric [data-banner='gated']")
    assert "not-enough-exposures" in str(banner.get_attribute("data-failures"))
    assert "statistics need at least 50 per variant" in banner.text
    rows = {str(r.get_attribute("data-variant")): cells(r) for r in css(browser, "table.results tbody tr")}
    assert rows["test"]["chance_to_win"] is None and rows["test"]["significant"] is None
