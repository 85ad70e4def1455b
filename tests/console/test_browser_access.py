"""Signing in (the link `make run` prints, a typed key, a wrong key, a key without the scope) and the
page's safety: user data rendered as text, a strict Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from tests.console.pages import (
    css,
    one,
    open_experiment,
    sign_in_with_key,
    signed_in,
    stored_key,
    text_of,
    until,
)
from tests.console.seed import Api
from tests.console.stack import LINK, Flagship

XSS = "<img src=x onerror=alert(1)>"


def test_the_sign_in_link_works_once_and_leaves_no_code_in_the_address(
    flagship: Flagship, new_browser: Callable[..., Any]
) -> None:
    link = LINK.search(flagship.output())
    assert link is not None, flagship.output()
    browser = new_browser()
    browser.get(link.group(1))
    until(lambda: signed_in(browser), what="signed in through the link")
    assert "sign-in" not in browser.current_url and link.group(2) not in browser.current_url
    key = stored_key(browser)
    assert isinstance(key, str) and key.startswith("phx_")
    assert browser.execute_script("return localStorage.length") == 0  # the key lives in this tab only
    with httpx.Client(trust_env=False) as http:
        me = http.get(f"{flagship.base_url}/api/users/@me/", headers={"Authorization": f"Bearer {key}"})
        assert me.status_code == 200 and me.json()["email"] == flagship.credentials()["user_email"]
    again = new_browser()
    again.get(link.group(1))
    assert "already been used" in text_of(again, "#signin-error")
    assert stored_key(again) is None and "sign-in" not in again.current_url


def test_a_typed_key_signs_in_and_wrong_or_unscoped_keys_are_explained(
    flagship: Flagship, admin: Api, new_browser: Callable[..., Any]
) -> None:
    browser = new_browser()
    sign_in_with_key(browser, flagship.base_url, "phx_not-a-real-key")
    until(lambda: "not valid" in text_of(browser, "#signin-error"), what="wrong-key message")
    assert stored_key(browser) is None
    flags_only = admin.http.post(
        "/api/personal_api_keys/", json={"label": "flags", "scopes": ["feature_flag:read"]}
    )
    assert flags_only.status_code == 201, flags_only.text
    sign_in_with_key(browser, flagship.base_url, flags_only.json()["value"])
    until(
        lambda: "missing required scope 'experiment:read'" in text_of(browser, "#signin-error"),
        what="scope message",
    )
    sign_in_with_key(browser, flagship.base_url, flagship.credentials()["personal_api_key"])
    until(lambda: signed_in(browser), what="signed in with a key")
    one(browser, "#sign-out").click()
    until(lambda: css(browser, "#api-key"), what="signed out")
    assert stored_key(browser) is None


def test_an_experiment_named_like_markup_shows_those_characters(
    flagship: Flagship, admin: Api, new_browser: Callable[..., Any]
) -> None:
    exp = admin.experiment(
        name=XSS, feature_flag_key="xss-name", description=f"<script>alert(2)</script>{XSS}"
    )
    browser = new_browser()
    sign_in_with_key(browser, flagship.base_url, flagship.credentials()["personal_api_key"])
    browser.get(f"{flagship.base_url}/#/?search=onerror")
    row = one(browser, f"#experiments tr[data-experiment-id='{exp['id']}']")
    assert row.find_element(By.CSS_SELECTOR, "td.name a").text == XSS
    assert not css(browser, "#experiments img")
    open_experiment(browser, flagship.base_url, exp["id"])
    assert text_of(browser, "#experiment-name") == XSS
    assert XSS in text_of(browser, ".description")
    assert not css(browser, "main img") and not css(browser, "main script")
    try:
        browser.switch_to.alert.dismiss()
        raise AssertionError("a script from the experiment's name ran")
    except NoAlertPresentException:
        pass


def test_the_console_is_served_under_a_strict_content_security_policy(flagship: Flagship) -> None:
    with httpx.Client(base_url=flagship.base_url, trust_env=False) as http:
        for path in ("/", "/console/js/main.js", "/console/console.css"):
            response = http.get(path)
            assert response.status_code == 200, path
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "default-src 'none'" in policy
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert (
            http.get("/console/js/main.js")
            .headers["content-type"]
            .startswith(("text/javascript", "application/javascript"))
        )
        assert http.get("/console/nope.js").status_code == 404
