"""/admin/: who sees it, and that its figures are the counts of the rows behind them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from tests.factories import record_notification, subscribe
from tests.helpers import count, rows
from webpush_server.auth.services import find_user
from webpush_server.extensions import db
from webpush_server.notifications.models import Delivery, DeliveryAttempt, Notification
from webpush_server.push.models import Subscription
from webpush_server.timeutil import utcnow

PAGES = (
    "/admin/",
    "/admin/deliveries?status=dead",
    "/admin/deliveries?status=sent&origin=https://fcm.googleapis.com&since=hour",
    "/admin/notifications?kind=test",
    "/admin/subscriptions?browser=Firefox",
    "/admin/rq/",
    "/admin/rq/0/view/workers",
)
FCM = "https://fcm.googleapis.com"
MOZ = "https://updates.push.services.mozilla.com"


def figures(html: str) -> dict[str, str]:
    """Every figure of a page (data-figure="…"), with the text it shows."""
    found = re.findall(r'data-figure="([^"]+)"[^>]*>\s*([^<]*?)\s*<', html)
    return dict(found)


@pytest.mark.parametrize("path", PAGES)
def test_operations_pages_are_for_admins_only(app, login_as, path):
    anonymous = app.test_client().get(path)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    for role in ("patron", "librarian"):
        assert login_as(f"{role}@ops.dev", role=role).get(path).status_code == 403, role
    admin = login_as("admin@ops.dev", role="admin").get(path)
    assert admin.status_code == 200, admin.text[:500]


def test_posts_are_for_admins_only(app, login_as):
    librarian = login_as("desk@ops.dev", role="librarian")
    for path in ("/admin/deliveries/1/retry", "/admin/deliveries/1/discard", "/admin/test"):
        assert librarian.post(path, data={"csrf_token": librarian.csrf}).status_code == 403


def history(app, user_id: int) -> dict[str, int]:
    """Write deliveries and attempts at two push services over the last day; return ids.

    The rows are written directly (statuses and attempt times a real run would take hours to
    produce); the figures must come out as the counts noted beside each.
    """
    now = utcnow()
    with app.app_context():
        chrome = "Mozilla/5.0 (X11; Linux) Chrome/140.0 Safari/537.36"
        firefox = "Mozilla/5.0 (X11; Linux; rv:140.0) Gecko Firefox/140.0"
        fcm = Subscription(
            user_id=user_id, endpoint=f"{FCM}/wp/a", p256dh="k", auth="a", user_agent=chrome
        )
        moz = Subscription(
            user_id=user_id, endpoint=f"{MOZ}/wpush/v2/b", p256dh="k", auth="a", user_agent=firefox
        )
        db.session.add_all([fcm, moz])
        db.session.commit()
        fcm_id, moz_id = fcm.id, moz.id
    notification_ids = [record_notification(app, user_id, kind="test") for _ in range(6)]
    with app.app_context():
        deliveries = list(db.session.scalars(select(Delivery).order_by(Delivery.id)))
        # record() made one delivery per device per notification: 12, fcm and moz alternating.
        plan = {
            # (status, origin, [(minutes ago, outcome, ms)])
            0: ("sent", FCM, [(5, "sent", 20.0)]),
            1: ("sent", MOZ, [(10, "sent", 40.0)]),
            2: ("sent", FCM, [(30, "sent", 30.0)]),
            3: ("failed", MOZ, [(50, "config_error", 15.0)]),
            4: ("pending", FCM, [(20, "transient", 100.0)]),
            5: ("gone", MOZ, [(120, "gone", 10.0)]),  # last day, not last hour
            6: ("dead", FCM, [(300, "transient", None), (200, "transient", None)]),
            7: ("sent", FCM, [(60 * 30, "sent", 5.0)]),  # older than a day: counted nowhere
        }
        attempts = []
        for index, (status, origin, tries) in plan.items():
            d = deliveries[index]
            d.status = status
            d.attempts = len(tries)
            d.last_error = "HTTP 401: bad jwt" if status == "failed" else None
            for number, (ago, outcome, ms) in enumerate(tries, 1):
                attempts.append({
                    "delivery_id": d.id, "attempt": number, "outcome": outcome,
                    "status_code": 401 if outcome == "config_error" else None,
                    "error": "HTTP 401: bad jwt" if outcome == "config_error" else None,
                    "at": now - timedelta(minutes=ago), "origin": origin, "duration_ms": ms,
                })  # fmt: skip
        db.session.execute(insert(DeliveryAttempt.__table__), attempts)
        # Receipts: two of the test notifications shown, one of them clicked.
        shown = db.session.get(Notification, deliveries[0].notification_id)
        shown.shown_at = shown.clicked_at = now
        other = db.session.get(Notification, deliveries[2].notification_id)
        other.shown_at = now
        db.session.commit()
        dead_id = deliveries[6].id
    return {"fcm": fcm_id, "moz": moz_id, "dead": dead_id, "notifications": len(notification_ids)}


def test_figures_equal_the_rows_behind_them(app, login_as):
    admin = login_as("admin@ops.dev", role="admin")
    with app.app_context():
        user_id = find_user("admin@ops.dev").id
    history(app, user_id)
    page = admin.get("/admin/")
    assert page.status_code == 200
    shown = figures(page.text)

    assert shown[f"hour|{FCM}|sent"] == "2" and shown[f"hour|{FCM}|retrying"] == "1"
    assert shown[f"hour|{MOZ}|sent"] == "1" and shown[f"hour|{MOZ}|failed"] == "1"
    assert shown[f"hour|{MOZ}|gone"] == "0"
    assert shown[f"day|{MOZ}|gone"] == "1" and shown[f"day|{FCM}|dead"] == "1"
    assert shown[f"day|{FCM}|sent"] == "2"  # the one from 30 hours ago is out of the window
    # Nearest-rank percentiles of the attempts' durations: FCM in the hour had 20, 30, 100 ms.
    assert shown[f"hour|{FCM}|p50"] == "30 ms" and shown[f"hour|{FCM}|p95"] == "100 ms"
    assert shown["dead|total"] == "1"
    assert shown["browser|Chrome"] == "1" and shown["browser|Firefox"] == "1"
    # Test notifications a device was sent: deliveries 0, 1, 2 (and the old 7) → 3 notices.
    assert shown["rate|test|pushed"] == "3"
    assert shown["rate|test|shown"] == "2" and shown["rate|test|clicked"] == "1"
    assert "HTTP 401: bad jwt" in page.text  # the recent configuration error
    assert page.text.count('class="bar bar-') >= 5  # the chart has bars, server-rendered
    assert "<script>" not in page.text  # no inline script (CSP: script-src 'self')

    # Each figure's link lists exactly as many rows as the figure says.
    for link, expected in (
        (f"/admin/deliveries?status=sent&origin={FCM}&since=hour", 2),
        (f"/admin/deliveries?status=retrying&origin={FCM}&since=hour", 1),
        (f"/admin/deliveries?status=gone&origin={MOZ}&since=day", 1),
        ("/admin/deliveries?status=dead", 1),
        ("/admin/notifications?kind=test&receipt=shown", 2),
        ("/admin/subscriptions?browser=Chrome", 1),
    ):
        listed = admin.get(link)
        assert listed.status_code == 200, link
        assert re.search(r'id="row-count">(\d+)<', listed.text).group(1) == str(expected), link
    figure_links = re.findall(r'data-figure="[^"]+"\s+href="([^"]+)"', page.text)
    assert figure_links and all(link.startswith("/admin/") for link in figure_links)


def test_retry_and_discard_a_dead_delivery(app, login_as, redis_url):
    admin = login_as("admin@ops.dev", role="admin")
    with app.app_context():
        user_id = find_user("admin@ops.dev").id
    dead_id = history(app, user_id)["dead"]
    form = {"csrf_token": admin.csrf}
    assert admin.client.post(f"/admin/deliveries/{dead_id}/retry").status_code == 400  # no CSRF
    answer = admin.client.post(f"/admin/deliveries/{dead_id}/retry", data=form)
    assert answer.status_code == 302
    (row,) = rows(app, Delivery, Delivery.id == dead_id)
    assert row.status == "pending" and row.attempts == 0
    from redis import Redis
    from rq import Queue

    jobs = Queue("push", connection=Redis.from_url(redis_url)).get_jobs()
    assert [job.args[0] for job in jobs][-1] == [dead_id]
    # Not dead any more: neither retry nor discard applies.
    again = admin.client.post(f"/admin/deliveries/{dead_id}/discard", data=form)
    assert again.status_code == 302
    assert rows(app, Delivery, Delivery.id == dead_id)[0].status == "pending"
    with app.app_context():
        db.session.get(Delivery, dead_id).status = "dead"
        db.session.commit()
    admin.client.post(f"/admin/deliveries/{dead_id}/discard", data=form)
    (row,) = rows(app, Delivery, Delivery.id == dead_id)
    assert row.status == "failed" and row.last_error.startswith("discarded by admin@ops.dev")
    assert admin.client.post("/admin/deliveries/999999/retry", data=form).status_code == 404


def test_admin_sends_a_test_notification_to_any_user(app, login_as, push_service, run_worker):
    reader = login_as("reader@ops.dev")
    (device,) = subscribe(reader, push_service)
    admin = login_as("admin@ops.dev", role="admin")
    answer = admin.client.post(
        "/admin/test", data={"email": "reader@ops.dev", "csrf_token": admin.csrf}
    )
    assert answer.status_code == 302
    run_worker()
    (push,) = push_service.pushes_for(device.endpoint)
    assert push.error is None
    assert count(app, Notification, Notification.kind == "test") == 1


def test_rq_dashboard_serves_its_script_and_assets_locally(app, login_as):
    admin = login_as("admin@ops.dev", role="admin")
    page = admin.get("/admin/rq/")
    assert page.status_code == 200
    inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*text/template)[^>]*>", page.text)
    assert inline == []  # every executable script is loaded from our origin
    sources = re.findall(r'<script src="([^"]+)"', page.text)
    assert sources and all(src.startswith("/admin/rq/") for src in sources)
    for src in sources:
        with admin.get(src.replace("&amp;", "&")) as loaded:  # a file response: close it
            assert loaded.status_code == 200, src
            assert loaded.mimetype in ("text/javascript", "application/javascript"), src
    script = admin.get("/admin/rq/?rq_script=1").text
    assert "X-CSRFToken" in script and "POLL_INTERVAL" in script
    data = admin.get("/admin/rq/0/data/queues.json")
    assert data.status_code == 200
    assert {q["name"] for q in data.json["queues"]} >= {"push"} or data.json["queues"] == []
    assert app.test_client().get("/admin/rq/static/js/jquery-3.5.1.min.js").status_code == 302
    patron = login_as("reader@ops.dev")
    assert patron.get("/admin/rq/static/js/jquery-3.5.1.min.js").status_code == 403
