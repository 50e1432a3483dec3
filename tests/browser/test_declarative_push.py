"""The declarative push message (`web_push: 8030`) in a real Firefox: shown, clicked, counted;
and `pushsubscriptionchange` when the push service forgets the browser's registrations."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.browser.firefox import Firefox, require_firefox
from tests.helpers import enable_push, log_in_firefox, wait_until
from webpush_server.extensions import db
from webpush_server.notifications.models import Notification
from webpush_server.notifications.record import Notice, record_notices
from webpush_server.push.models import Subscription

pytestmark = pytest.mark.browser


def notify(app, user_id: int, title: str, body: str, url: str, key: str) -> int:
    """Record one `test` notification (it goes to every device, tab open or not); its id."""
    with app.app_context():
        [notification_id] = record_notices([Notice(user_id, "test", title, body, url, key)])
        db.session.commit()
    return notification_id


def receipts(app, notification_id: int) -> tuple:
    with app.app_context():
        row = db.session.get(Notification, notification_id)
        return row.shown_at, row.clicked_at, row.read_at


def test_the_8030_message_shows_in_firefox_and_a_click_opens_n_id_and_counts(
    app, firefox, live_server, live_worker, push_service, make_user, tmp_path, login_as
):
    user_id = make_user("decl@webpush-server.dev", name="Decl")
    log_in_firefox(firefox, live_server, "decl@webpush-server.dev")
    endpoint = enable_push(firefox, live_server)
    firefox.navigate(f"{live_server}/funding/")
    notification_id = notify(
        app, user_id, "Dune is ready", "Pick it up by Friday ☕", "/notifications", "decl:1"
    )

    pushes = push_service.wait_for(
        lambda pushes: any(p.endpoint == endpoint for p in pushes), timeout=60
    )
    (push,) = [p for p in pushes if p.endpoint == endpoint]
    # Encrypted for Firefox alone (the local service only forwards it): the notification it
    # shows proves its service worker read the 8030 message; a reader of the old flat shape
    # would have shown the generic "New notification" instead.
    assert push.status == 201 and push.topic

    shown = firefox.wait_for_notification("Dune is ready", timeout=60)
    assert shown["body"] == "Pick it up by Friday ☕"
    assert shown["data"] == {"id": notification_id, "url": f"{live_server}/n/{notification_id}"}
    with app.app_context():
        assert shown["tag"] == db.session.get(Notification, notification_id).tag
    wait_until(lambda: receipts(app, notification_id)[0] is not None, "the shown receipt")
    assert receipts(app, notification_id)[1:] == (None, None)

    firefox.click_notification("Dune is ready", timeout=30)
    # /n/<id> counted the click and sent the tab on to the notification's page.
    firefox.switch_to_window_showing(f"{live_server}/notifications", timeout=45)
    wait_until(
        lambda: None not in receipts(app, notification_id), "the click and the read recorded"
    )
    firefox.screenshot(tmp_path / "after-click.png")

    # Where no service worker runs (Safari shows the message itself), navigate alone counts.
    second = notify(app, user_id, "Second", "By link", "/library/", "decl:2")
    firefox.navigate(f"{live_server}/n/{second}")
    firefox.wait_until("location.pathname === '/library/'")
    assert None not in receipts(app, second)
    # Someone else's /n/<id> is 404, and counts nothing.
    other = login_as("other@webpush-server.dev")
    third = notify(app, user_id, "Third", "Not yours", "/", "decl:3")
    assert other.get(f"/n/{third}").status_code == 404
    assert receipts(app, third)[1:] == (None, None)


def endpoints_of(app, user_id: int) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(select(Subscription.endpoint).where(Subscription.user_id == user_id))
        )


def test_pushsubscriptionchange_in_firefox_replaces_the_endpoint_on_the_server(
    app, live_server, live_worker, push_service, make_user, tmp_path
):
    require_firefox()
    # Reconnect at once after the push service drops the socket (the default waits 5 s).
    prefs = {"dom.push.retryBaseInterval": 500}
    with Firefox(push_server_url=push_service.websocket_url, prefs=prefs) as firefox:
        user_id = make_user("renew@webpush-server.dev", name="Renew")
        log_in_firefox(firefox, live_server, "renew@webpush-server.dev")
        old = enable_push(firefox, live_server)
        assert endpoints_of(app, user_id) == [old]

        # The push service forgets this browser: a new uaid at the next hello.
        push_service.change_uaid()
        wait_until(lambda: push_service.uaid_changes, "Firefox saying hello again")
        # Firefox dropped the subscription and fired pushsubscriptionchange; the service
        # worker subscribed again and told the server, which replaced the old endpoint.
        wait_until(
            lambda: endpoints_of(app, user_id) not in ([], [old]),
            "the new endpoint stored in place of the old one",
            timeout=60,
        )
        (new,) = endpoints_of(app, user_id)
        assert new != old and new.startswith(push_service.origin + "/wpush/")

        # The new subscription works: a push reaches this Firefox through it.
        firefox.navigate(f"{live_server}/funding/")
        notify(app, user_id, "Still here", "After the change", "/notifications", "renew:1")
        push_service.wait_for(lambda pushes: any(p.endpoint == new for p in pushes), timeout=60)
        shown = firefox.wait_for_notification("Still here", timeout=60)
        assert shown["body"] == "After the change"
