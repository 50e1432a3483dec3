"""Browser fixtures: Firefox ESR pointed at the local push service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.firefox import Firefox, require_firefox


@pytest.fixture
def firefox(push_service) -> Iterator[Firefox]:
    """A headless Firefox whose push service is the local one."""
    require_firefox()
    with Firefox(push_server_url=push_service.websocket_url) as browser:
        yield browser


def log_in(browser: Firefox, base_url: str, email: str, password: str) -> None:
    """Log in through the login form."""
    browser.navigate(f"{base_url}/login")
    browser.type("input[name=email]", email)
    browser.type("input[name=password]", password)
    browser.click("form[action$='/login'] button[type=submit], form button[type=submit]")
    browser.wait_until("!location.pathname.startsWith('/login')")


def enable_push(browser: Firefox, base_url: str) -> str:
    """Turn push on from the notifications page; return the endpoint the page stored."""
    browser.navigate(f"{base_url}/notifications")
    browser.wait_until(
        "document.querySelector('#push-toggle') && !document.querySelector('#push-toggle').disabled"
    )
    browser.click("#push-toggle")
    browser.wait_until("document.querySelectorAll('#devices li[data-endpoint]').length === 1")
    return browser.script(
        "return document.querySelector('#devices li[data-endpoint]').dataset.endpoint"
    )
