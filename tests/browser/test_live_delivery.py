"""A tab open in Firefox gets notifications live (toast, bell) and no Web Push; closed, push."""

from __future__ import annotations

import pytest

from tests.factories import record_notification
from tests.helpers import delivery_statuses, enable_push, is_visible, log_in_firefox, wait_until

pytestmark = pytest.mark.browser


def test_open_tab_shows_a_toast_and_the_bell_then_a_closed_tab_gets_push(
    app, firefox, live_server, live_worker, push_service, make_user, tmp_path
):
    user_id = make_user("tabs@webpush-server.dev", name="Tabitha")
    log_in_firefox(firefox, live_server, "tabs@webpush-server.dev")
    # Turn push on from the notifications page: Firefox subscribes, the page stores the device.
    endpoint = enable_push(firefox, live_server)

    # Another page of the site: the header bell and toasts are on every page.
    firefox.navigate(f"{live_server}/")
    firefox.wait_until("document.documentElement.dataset.live === 'websocket'")
    wait_until(lambda: is_visible(app, user_id), "the Firefox tab to count as visible")

    live_id = record_notification(app, user_id, title="Your book is ready")
    firefox.wait_until(f"document.querySelector('.toast[data-id=\"{live_id}\"]')")
    # Read the text from the DOM: while the toast fades in, WebDriver counts it as not shown.
    firefox.wait_until(
        "document.querySelector('.toast .toast-title').textContent === 'Your book is ready'"
    )
    assert firefox.script("return document.querySelector('.toast a').getAttribute('href')") == (
        "/notifications"
    )
    firefox.wait_until("document.getElementById('bell-count').textContent === '1'")
    assert firefox.script("return document.getElementById('bell-count').hidden") is False
    firefox.wait_until("document.querySelector('.toast').getAnimations().length === 0")
    firefox.screenshot(tmp_path / "toast.png")
    # Live only: the delivery was skipped, nothing went to the push service, nothing is shown.
    assert delivery_statuses(app, live_id) == ["skipped"]
    assert push_service.pushes_for(endpoint) == []
    assert firefox.notifications() == []

    # Close the tab (leave the site): the same kind now travels by Web Push.
    firefox.navigate("about:blank")
    wait_until(lambda: not is_visible(app, user_id), "the closed tab to stop counting")
    pushed_id = record_notification(app, user_id, title="Another book is ready")
    push_service.wait_for(lambda pushes: any(p.endpoint == endpoint for p in pushes), 30)
    wait_until(
        lambda: delivery_statuses(app, pushed_id) == ["sent"], "the push to be recorded sent"
    )
    firefox.navigate(f"{live_server}/notifications")
    shown = firefox.wait_for_notification("Another book is ready", timeout=30)
    assert shown["tag"] and shown["data"]["id"] == pushed_id
