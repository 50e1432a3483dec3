"""A push that Firefox shows comes back as a `shown` receipt from the service worker."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.helpers import enable_push, log_in_firefox, wait_until
from webpush_server.extensions import db
from webpush_server.notifications.models import Notification

pytestmark = pytest.mark.browser


def test_a_push_shown_in_firefox_is_reported_shown(
    app, firefox, live_server, live_worker, push_service, make_user
):
    make_user("shown@webpush-server.dev", name="Shown")
    log_in_firefox(firefox, live_server, "shown@webpush-server.dev")
    enable_push(firefox, live_server)
    firefox.click("#send-test")
    shown = firefox.wait_for_notification("Test notification", timeout=60)
    notification_id = shown["data"]["id"]

    def shown_at():
        with app.app_context():
            return db.session.scalar(
                select(Notification.shown_at).where(Notification.id == notification_id)
            )

    wait_until(lambda: shown_at() is not None, "the shown receipt", timeout=30)
    with app.app_context():
        row = db.session.get(Notification, notification_id)
        assert row.kind == "test" and row.clicked_at is None and row.closed_at is None
