"""Smoke test of the browser harness: Firefox subscribes to the local push service, shows a push."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import webpush

from tests.browser.firefox import Firefox, require_firefox
from tests.pushservice import PushService, b64url_encode

pytestmark = pytest.mark.browser

INDEX_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>push harness</title></head>
<body>
<p id="state">starting</p>
<script>
const applicationServerKey = "%(key)s";
window.subscriptionReady = (async () => {
  const registration = await navigator.serviceWorker.register("/sw.js");
  await navigator.serviceWorker.ready;
  if (await Notification.requestPermission() !== "granted") throw new Error("denied");
  const subscription = await registration.pushManager.subscribe(
    {userVisibleOnly: true, applicationServerKey});
  document.getElementById("state").textContent = "subscribed";
  return subscription.toJSON();
})();
</script>
</body></html>
"""

SW_JS = """
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("push", (event) => {
  const data = event.data ? event.data.json() : {title: "(empty push)"};
  event.waitUntil(self.registration.showNotification(
    data.title, {body: data.body, tag: data.tag, data}));
});
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def vapid() -> Vapid:
    key = Vapid()
    key.generate_keys()
    return key


@pytest.fixture
def server_key(vapid: Vapid) -> str:
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(raw)


@pytest.fixture
def push_service(server_key: str) -> Iterator[PushService]:
    with PushService(expected_vapid_key=server_key) as service:
        yield service


@pytest.fixture
def site(tmp_path: Path, server_key: str) -> Iterator[str]:
    (tmp_path / "index.html").write_text(INDEX_HTML % {"key": server_key})
    (tmp_path / "sw.js").write_text(SW_JS)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def firefox(push_service: PushService) -> Iterator[Firefox]:
    require_firefox()
    with Firefox(push_server_url=push_service.websocket_url) as browser:
        yield browser


def test_push_reaches_a_firefox_notification(
    firefox: Firefox, push_service: PushService, site: str, vapid: Vapid, server_key: str
) -> None:
    firefox.navigate(f"{site}/index.html")
    subscription = firefox.script("return await window.subscriptionReady;", timeout=30)

    assert subscription["endpoint"].startswith(f"{push_service.origin}/wpush/")
    assert set(subscription["keys"]) == {"p256dh", "auth"}
    assert firefox.text("#state") == "subscribed"
    payload = {"title": "Harness works", "body": "from the local push service", "tag": "smoke"}
    response = webpush(
        subscription,
        json.dumps(payload),
        vapid_private_key=vapid,
        vapid_claims={"sub": "mailto:ops@webpush.test"},
        ttl=60,
    )

    assert response.status_code == 201
    [push] = push_service.received
    assert push.error is None and push.vapid_key == server_key
    ack = push_service.wait_for_ack(push.version or "", timeout=15)
    assert ack["code"] == 100
    shown = firefox.wait_for_notification("Harness works")
    assert shown["body"] == payload["body"] and shown["tag"] == "smoke"
    assert shown["data"] == payload
    assert [n["title"] for n in firefox.notifications()] == ["Harness works"]
