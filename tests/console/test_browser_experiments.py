"""The experiments list and the experiment page's actions, in a real browser against a real
Flagship: what the page does must change what the API reports (and the flag)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select

from settings import Settings, default_database_url
from tests.console.pages import (
    act,
    badge,
    css,
    one,
    open_experiment,
    press,
    sign_in_with_key,
    signed_in,
    text_of,
    until,
)
from tests.console.seed import Api
from tests.console.stack import Flagship
from tests.support.users import make_user


def signed_in_browser(
    flagship: Flagship, new_browser: Callable[..., Any], key: str | None = None, width: int = 1280
) -> WebDriver:
    browser: WebDriver = new_browser(width)
    sign_in_with_key(browser, flagship.base_url, key or flagship.credentials()["personal_api_key"])
    until(lambda: signed_in(browser), what="signed in")
    return browser


def in_every_status(admin: Api, prefix: str) -> dict[str, int]:
    ids = {
        status: admin.experiment(name=f"{prefix} {status}", feature_flag_key=f"{prefix}-{status}")["id"]
        for status in ("draft", "running", "paused", "stopped", "archived")
    }
    for status, operations in {
        "running": ["launch"],
        "paused": ["launch", "pause"],
        "stopped": ["launch", "end"],
        "archived": ["launch", "end", "archive"],
    }.items():
        for operation in operations:
            admin.call("POST", f"experiments/{ids[status]}/{operation}/", {})
    return ids


def test_the_list_shows_each_status_filters_searches_and_pages(
    flagship: Flagship, admin: Api, new_browser: Callable[..., Any], screenshots: Path
) -> None:
    ids = in_every_status(admin, "Badges")
    browser = signed_in_browser(flagship, new_browser)
    browser.get(f"{flagship.base_url}/#/?search=Badges")
    until(lambda: len(css(browser, "#experiments tbody tr")) == 4, what="four unarchived rows")
    seen = {
        int(str(r.get_attribute("data-experiment-id"))): r.get_attribute("data-status")
        for r in css(browser, "#experiments tbody tr")
    }
    assert seen == {ids[s]: s for s in ("draft", "running", "paused", "stopped")}
    for row in css(browser, "#experiments tbody tr"):
        assert row.find_element(By.CSS_SELECTOR, ".badge").text.lower() == row.get_attribute("data-status")
    browser.save_screenshot(str(screenshots / "list-1280.png"))
    Select(one(browser, "#status-filter")).select_by_value("archived")
    until(
        lambda: (
            [r.get_attribute("data-experiment-id") for r in css(browser, "#experiments tbody tr")]
            == [str(ids["archived"])]
        ),
        what="archived filter",
    )
    browser.get(f"{flagship.base_url}/#/?search=Badges&limit=2")
    until(lambda: text_of(browser, "#page-range") == "1–2 of 4", what="first page")
    press(browser, one(browser, "#page-next"))
    until(lambda: text_of(browser, "#page-range") == "3–4 of 4", what="second page")
    phone = signed_in_browser(flagship, new_browser, width=390)
    phone.get(f"{flagship.base_url}/#/?search=Badges")
    until(lambda: len(css(phone, "#experiments tbody tr")) == 4, what="rows on a phone")
    phone.save_screenshot(str(screenshots / "list-390.png"))


def test_create_launch_and_pause_from_the_page_change_the_api_and_the_flag(
    flagship: Flagship, admin: Api, new_browser: Callable[..., Any], screenshots: Path
) -> None:
    browser = signed_in_browser(flagship, new_browser)
    press(browser, one(browser, "#new-experiment"))
    one(browser, "#new-name").send_keys("Onboarding checklist")
    assert one(browser, "#new-flag-key").get_attribute("value") == "onboarding-checklist"
    press(browser, one(browser, "#create-submit"))
    until(lambda: "/experiments/" in browser.current_url, what="the new experiment's page")
    experiment_id = int(str(browser.current_url).rsplit("/", 1)[1])
    until(lambda: badge(browser) == "draft", what="draft badge")
    act(browser, "launch")
    until(lambda: badge(browser) == "running", what="running badge")
    exp = admin.call("GET", f"experiments/{experiment_id}/")
    assert exp["status"] == "running" and exp["feature_flag"]["active"] is True
    act(browser, "pause")
    until(lambda: badge(browser) == "paused", what="paused badge")
    exp = admin.call("GET", f"experiments/{experiment_id}/")
    assert exp["status"] == "paused" and exp["feature_flag"]["active"] is False
    flag = admin.call("GET", f"feature_flags/{exp['feature_flag']['id']}/")
    assert flag["active"] is False
    # A refused action shows PostHog's message inline and changes nothing.
    admin.call("POST", f"experiments/{experiment_id}/resume/", {})
    act(browser, "resume")
    until(lambda: "Experiment is not paused." in text_of(browser, "#action-error"), what="inline error")
    # The audit trail lists the page's transitions, newest first.
    open_experiment(browser, flagship.base_url, experiment_id)

    def ops() -> list[tuple[str | None, str | None]]:
        return [
            (i.get_attribute("data-operation"), i.get_attribute("data-outcome"))
            for i in css(browser, "#activity li")
        ]

    until(
        lambda: ops()[:3] == [("resume", "rejected"), ("resume", "accepted"), ("pause", "accepted")],
        what=f"activity {ops()}",
    )
    temporal = one(browser, "#temporal-link").get_attribute("href")
    assert (
        temporal
        == f"http://127.0.0.1:{flagship.ui_port}/namespaces/default/workflows/experiment-1-{experiment_id}"
    )
    browser.save_screenshot(str(screenshots / "experiment-1280.png"))

    def conclude() -> None:
        Select(one(browser, "#action-conclusion")).select_by_value("won")
        one(browser, "#action-comment").send_keys("Clear <b>win</b>")

    act(browser, "end", conclude)
    until(lambda: badge(browser) == "stopped", what="stopped badge")
    exp = admin.call("GET", f"experiments/{experiment_id}/")
    assert (exp["conclusion"], exp["conclusion_comment"]) == ("won", "Clear <b>win</b>")
    assert "won — Clear <b>win</b>" in one(browser, "[data-key='conclusion']").text
    act(browser, "archive")
    until(lambda: badge(browser) == "archived", what="archived badge")
    assert admin.call("GET", f"experiments/{experiment_id}/")["archived"] is True


def test_a_launch_under_an_approval_policy_is_approved_from_the_page(
    flagship: Flagship, admin: Api, new_browser: Callable[..., Any], screenshots: Path
) -> None:
    settings = Settings(database_url=default_database_url(flagship.data_dir))
    approver_id, approver_key = asyncio.run(make_user(settings, admin.project_id))  # no endpoint adds users
    policy = admin.call(
        "POST",
        "approval_policies/",
        {"action_key": "feature_flag.enable", "approver_config": {"quorum": 1, "users": [approver_id]}},
        expect=201,
    )
    try:
        exp = admin.experiment(name="Pricing page", feature_flag_key="pricing-page-approval")
        requester = signed_in_browser(flagship, new_browser)
        open_experiment(requester, flagship.base_url, exp["id"])
        act(requester, "launch")
        box = one(requester, "#feedback .approval")
        until(
            lambda: "Approval required" in box.text and f"user {approver_id}" in box.text,
            what="change request",
        )
        assert not css(requester, "#approve-change")  # the requester cannot approve their own change
        assert admin.call("GET", f"experiments/{exp['id']}/")["status"] == "draft"
        requester.save_screenshot(str(screenshots / "approval-requested.png"))

        approver = signed_in_browser(flagship, new_browser, approver_key)
        open_experiment(approver, flagship.base_url, exp["id"])
        assert one(approver, "#approvals .approval").get_attribute("data-state") == "pending"
        press(approver, one(approver, "#approve-change"))
        until(lambda: badge(approver) == "running", what="launched by the approval")
        assert admin.call("GET", f"experiments/{exp['id']}/")["status"] == "running"
        assert not css(approver, "#approvals")
        until(
            lambda: "approval" in [i.get_attribute("data-via") for i in css(approver, "#activity li")],
            what="approval in activity",
        )
    finally:
        # Only the policy's approver may switch it off while it is enabled.
        response = admin.http.patch(
            admin.path(f"approval_policies/{policy['id']}/"),
            json={"enabled": False},
            headers={"Authorization": f"Bearer {approver_key}"},
        )
        assert response.status_code == 200, response.text
