"""A service API announcement: a toast in an open tab, Web Push once the tab is gone."""

from __future__ import annotations

import pytest
import requests

from tests.helpers import delivery_statuses, enable_push, is_visible, log_in_firefox, wait_until
from tests.service_api import bearer, make_key, notify_body

pytestmark = pytest.mark.browser


def _announce(live_server: str, key: str, user_id: int, title: str) -> int:
    response = requests.post(
        f"{live_server}/api/v1/notifications",
        json=notify_body({"user_id": user_id}, title=title, url="/library/"),
        headers=bearer(key),
        timeout=10,
    )
    assert response.status_code == 202, response.text
    status = requests.get(
        f"{live_server}/api/v1/notifications/{response.json()['id']}",
        headers=bearer(key),
        timeout=10,
    ).json()
    return status["recipients"][0]["notification_id"]


def test_an_api_announcement_toasts_in_an_open_tab_and_pushes_to_a_closed_one(
    app, firefox, live_server, live_worker, push_service, make_user
):
    user_id = make_user("announce@webpush-server.dev", name="Ann")
    _, key = make_key(app, "catalogue", "library")
    log_in_firefox(firefox, live_server, "announce@webpush-server.dev")
    endpoint = enable_push(firefox, live_server)
    firefox.navigate(f"{live_server}/")
    firefox.wait_until("document.documentElement.dataset.live === 'websocket'")
    wait_until(lambda: is_visible(app, user_id), "the Firefox tab to count as visible")

    live_id = _announce(live_server, key, user_id, "Closing early today")
    firefox.wait_until(f"document.querySelector('.toast[data-id=\"{live_id}\"]')")
    firefox.wait_until(
        "document.querySelector('.toast .toast-title').textContent === 'Closing early today'"
    )
    assert firefox.script("return document.querySelector('.toast a').getAttribute('href')") == (
        "/library/"
    )
    assert delivery_statuses(app, live_id) == ["skipped"]
    assert push_service.pushes_for(endpoint) == []

    firefox.navigate("about:blank")
    wait_until(lambda: not is_visible(app, user_id), "the closed tab to stop counting")
    pushed_id = _announce(live_server, key, user_id, "Open again tomorrow")
    push_service.wait_for(lambda pushes: any(p.endpoint == endpoint for p in pushes), 30)
    wait_until(lambda: delivery_statuses(app, pushed_id) == ["sent"], "the push to be sent")
    firefox.navigate(f"{live_server}/notifications")
    shown = firefox.wait_for_notification("Open again tomorrow", timeout=30)
    assert shown["data"]["id"] == pushed_id and shown["title"] == "Open again tomorrow"
