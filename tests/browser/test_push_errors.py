"""A failed "Turn on push" says what happened and what to do, never the browser's raw error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.firefox import Firefox, require_firefox
from tests.helpers import free_port, log_in_firefox

pytestmark = pytest.mark.browser


def open_notifications(browser: Firefox, live_server: str, make_user, email: str) -> None:
    make_user(email, name="Pat")
    log_in_firefox(browser, live_server, email)
    browser.navigate(f"{live_server}/notifications")
    browser.wait_until("document.querySelector('#push-status').textContent.trim() !== ''")


@pytest.fixture
def unreachable_push() -> Iterator[Firefox]:
    """A Firefox whose push service is down: nothing listens where it looks for one."""
    require_firefox()
    with Firefox(push_server_url=f"ws://127.0.0.1:{free_port()}/") as browser:
        yield browser


def test_a_subscription_error_says_to_try_again_instead_of_the_raw_error(
    unreachable_push, live_server, make_user, tmp_path
):
    browser = unreachable_push
    open_notifications(browser, live_server, make_user, "down@webpush-server.dev")
    browser.wait_until("!document.querySelector('#push-toggle').disabled")
    browser.click("#push-toggle")
    browser.wait_until("document.querySelector('#push-message').textContent.trim() !== ''", 60)
    message = browser.text("#push-message")
    assert "could not reach its push service" in message and "try again" in message
    assert "Error" not in message and "Registration failed" not in message
    browser.screenshot(tmp_path / "push-error.png")


def test_denied_notifications_say_where_to_allow_them(live_server, make_user):
    require_firefox()
    with Firefox(prefs={"permissions.default.desktop-notification": 2}) as browser:
        open_notifications(browser, live_server, make_user, "denied@webpush-server.dev")
        assert browser.script("return document.querySelector('#push-toggle').disabled") is True
        assert "site settings" in browser.text("#push-help")
