"""A real Firefox enables push on the notifications page and shows the test notification."""

from __future__ import annotations

import pytest

from tests.browser.conftest import log_in
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_firefox_enables_push_and_shows_a_test_notification(
    firefox, live_server, live_worker, push_service, make_user, tmp_path
):
    make_user("firefox@webpush-server.dev", name="Fira")
    log_in(firefox, live_server, "firefox@webpush-server.dev", PASSWORD)
    firefox.navigate(f"{live_server}/notifications")
    firefox.wait_until(
        "document.querySelector('#push-toggle') && !document.querySelector('#push-toggle').disabled"
    )
    firefox.click("#push-toggle")
    # The page subscribed through Firefox's push service and stored the device with us.
    firefox.wait_until("document.querySelectorAll('#devices li[data-endpoint]').length === 1")
    endpoint = firefox.script(
        "return document.querySelector('#devices li[data-endpoint]').dataset.endpoint"
    )
    assert endpoint.startswith(push_service.origin + "/wpush/")
    firefox.click("#send-test")
    shown = firefox.wait_for_notification("Test notification", timeout=60)
    assert shown["body"] == "Push works on this device."
    assert shown["data"]["url"] == f"{live_server}/notifications"
    (push,) = push_service.pushes_for(endpoint)
    assert push.error is None and push.urgency == "high" and push.ttl > 0
    firefox.screenshot(tmp_path / "notifications.png")
