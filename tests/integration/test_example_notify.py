"""examples/notify.py (stdlib only) sends, is idempotent, and polls to `sent` on a live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.factories import add_device
from tests.helpers import ROOT, count
from tests.service_api import make_key
from webpush_server.notifications.models import Notification


def run_example(live_server: str, key: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"WEBPUSH_API_KEY": key}
    return subprocess.run(
        [sys.executable, "-I", str(ROOT / "examples" / "notify.py"), "--url", live_server, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_notify_example_sends_once_and_reports_sent(
    app, live_server, live_worker, make_user, push_service
):
    reader = make_user("reader@webpush-server.dev")
    device = add_device(app, reader, push_service)
    _, key = make_key(app)
    args = ("--user-id", str(reader), "--title", "Shipped", "--idempotency-key", "order-9")
    done = run_example(live_server, key, *args)
    assert done.returncode == 0, done.stderr
    accepted, report = (json.loads(line) for line in done.stdout.splitlines())
    assert accepted["status"] == "queued" and accepted["recipients"] == 1
    assert report["id"] == accepted["id"] and report["status"] == "sent"
    assert report["recipients"][0]["channels"]["push"]["sent"] == 1
    (push,) = push_service.pushes_for(device.endpoint)
    assert push.notification["title"] == "Shipped"

    again = run_example(live_server, key, *args)
    assert again.returncode == 0
    assert json.loads(again.stdout.splitlines()[0])["id"] == accepted["id"]
    assert count(app, Notification) == 1 and len(push_service.pushes_for(device.endpoint)) == 1

    refused = run_example(live_server, "wps_" + "x" * 43, *args)
    assert refused.returncode == 1 and "unauthorized" in refused.stderr
