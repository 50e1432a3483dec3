"""/admin/ groups the refusals a push service blames on our keys, and its tables stack on phones."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import insert, select

from tests.factories import record_notification
from webpush_server.auth.services import find_user
from webpush_server.extensions import db
from webpush_server.notifications.models import Delivery, DeliveryAttempt
from webpush_server.push.models import Subscription
from webpush_server.timeutil import utcnow

FCM = "https://fcm.googleapis.com"
APPLE = "https://web.push.apple.com"


def test_config_errors_are_one_row_per_service_and_answer_with_how_often(app, login_as):
    admin = login_as("admin@config.dev", role="admin")
    now = utcnow()
    with app.app_context():
        user_id = find_user("admin@config.dev").id
        db.session.add(Subscription(user_id=user_id, endpoint=f"{FCM}/wp/a", p256dh="k", auth="a"))
        db.session.commit()
    for _ in range(5):
        record_notification(app, user_id, kind="test")
    with app.app_context():
        ids = list(db.session.scalars(select(Delivery.id).order_by(Delivery.id)))
        tries = [
            # (delivery, origin, status, error, minutes ago)
            (ids[0], FCM, 403, "HTTP 403: BadJwtToken", 50),
            (ids[1], FCM, 403, "HTTP 403: BadJwtToken", 30),
            (ids[2], FCM, 403, "HTTP 403: BadJwtToken", 10),
            (ids[3], APPLE, 400, "HTTP 400: BadWebPushTopic", 20),
            (ids[4], FCM, 403, "HTTP 403: BadJwtToken", 60 * 30),  # older than a day
        ]
        db.session.execute(
            insert(DeliveryAttempt.__table__),
            [
                {"delivery_id": d, "attempt": 1, "outcome": "config_error", "status_code": code,
                 "error": error, "at": now - timedelta(minutes=ago), "origin": origin,
                 "duration_ms": 5.0}
                for d, origin, code, error, ago in tries
            ],
        )  # fmt: skip
        db.session.commit()

    html = admin.get("/admin/").text
    section = html[html.index('id="config-errors"') : html.index('id="executions"')]
    body = section[section.index("<tbody>") :]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    assert len(rows) == 2  # the two services, not one line per refused push
    times = dict(re.findall(r'data-figure="config\|([^|"]+)\|\d+">(\d+)<', section))
    assert times == {FCM: "3", APPLE: "1"}
    # Newest first; the last refused delivery is one click away.
    assert "fcm.googleapis.com" in rows[0] and f"/admin/deliveries/{ids[2]}" in rows[0]
    assert "BadWebPushTopic" in rows[1]


def test_every_dashboard_cell_is_labelled_for_the_phone_layout(app, login_as):
    admin = login_as("admin@stack.dev", role="admin")
    with app.app_context():
        user_id = find_user("admin@stack.dev").id
    record_notification(app, user_id, kind="test")
    html = admin.get("/admin/").text
    tables = re.findall(r"<table[^>]*>", html)
    assert tables and all('class="ops-table stack"' in t for t in tables)
    cells = re.findall(r"<td\b[^>]*>", html)
    assert cells and [c for c in cells if "data-label=" not in c] == []
