"""A real Firefox enables push on the notifications page and shows the test notification."""

from __future__ import annotations

import pytest

from tests.helpers import enable_push, log_in_firefox

pytestmark = pytest.mark.browser


def test_firefox_enables_push_and_shows_a_test_notification(
    firefox, live_server, live_worker, push_service, make_user, tmp_path
):
    make_user("firefox@webpush-server.dev", name="Fira")
    log_in_firefox(firefox, live_server, "firefox@webpush-server.dev")
    # Turn push on from the notifications page: Firefox subscribes, the page stores the device.
    endpoint = enable_push(firefox, live_server)
    assert endpoint.startswith(push_service.origin + "/wpush/")
    firefox.click("#send-test")
    shown = firefox.wait_for_notification("Test notification", timeout=60)
    assert shown["body"] == "Push works on this device."
    # A click opens /n/<id> (it counts the click, then goes on to the notification's page).
    assert shown["data"]["url"] == f"{live_server}/n/{shown['data']['id']}"
    (push,) = push_service.pushes_for(endpoint)
    assert push.error is None and push.urgency == "high" and push.ttl > 0
    firefox.screenshot(tmp_path / "notifications.png")


def test_a_test_notification_with_no_device_says_so_and_points_to_the_push_switch(
    firefox, live_server, push_service, make_user, tmp_path
):
    make_user("nodevice@webpush-server.dev", name="Nod")
    log_in_firefox(firefox, live_server, "nodevice@webpush-server.dev")
    firefox.navigate(f"{live_server}/notifications")
    firefox.wait_until(
        "document.querySelector('#push-toggle') && !document.querySelector('#push-toggle').disabled"
    )
    firefox.click("#send-test")
    firefox.wait_until("!document.querySelector('#test-status').hidden")
    said = firefox.text("#test-status")
    assert said.startswith("No device has push turned on, so nothing was sent by push")
    assert 'use "Turn on push" above' in said
    assert "sent to" not in said
    assert firefox.script("return document.querySelector('#test-status').dataset.kind") == "error"
    assert firefox.script("return document.activeElement.id") == "push-toggle"
    # Still in the inbox, where it did arrive; no push went anywhere.
    firefox.wait_until("document.querySelectorAll('#inbox li[data-id]').length === 1")
    assert push_service.received == []
    firefox.screenshot(tmp_path / "test-without-device.png")
