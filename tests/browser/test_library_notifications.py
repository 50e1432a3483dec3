"""A patron with push on reserves a book in Firefox and leaves the site; a librarian checks a
copy in; the browser shows "your book is ready", and clicking it opens the hold."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.helpers import enable_push, log_in_firefox, wait_until
from webpush_server.extensions import db
from webpush_server.library import services
from webpush_server.notifications.models import Notification

pytestmark = pytest.mark.browser


def test_book_ready_notification_shows_and_opens_the_hold(
    firefox, live_server, live_worker, push_service, app, make_user, tmp_path, login_as
):
    make_user("desk@webpush-server.dev", role="librarian")
    make_user("borrower@webpush-server.dev")
    make_user("reader@webpush-server.dev", name="Reader")
    with app.app_context():
        book, (copy_id,) = services.add_book("The Dispossessed", "Ursula K. Le Guin", None, 1)
        book_id = book.id
        services.check_out(copy_id, "borrower@webpush-server.dev")

    log_in_firefox(firefox, live_server, "reader@webpush-server.dev")
    endpoint = enable_push(firefox, live_server)
    firefox.navigate(f"{live_server}/library/books/{book_id}")
    firefox.click("#reserve")
    firefox.wait_until("location.pathname.startsWith('/library/holds/')")
    hold_id = int(firefox.script("return location.pathname.split('/').pop()"))
    assert "number 1 in the queue" in firefox.text("#hold-status")
    # The patron leaves the site: with a visible tab the live channel would tell them instead.
    firefox.navigate("about:blank")

    desk = login_as("desk@webpush-server.dev", "librarian")
    returned = desk.post(f"/api/library/copies/{copy_id}/return")
    assert returned.json == {"copy_status": "held", "hold_id": hold_id}

    # It went by Web Push (no tab of ours was open), then the patron comes back to the site.
    push_service.wait_for(lambda pushes: any(p.endpoint == endpoint for p in pushes), timeout=60)
    firefox.navigate(f"{live_server}/library/")
    shown = firefox.wait_for_notification("Your book is ready: The Dispossessed", timeout=60)
    assert shown["data"]["url"] == f"{live_server}/n/{shown['data']['id']}"
    assert shown["tag"] == f"hold-{hold_id}"

    firefox.click_notification("Your book is ready: The Dispossessed", timeout=30)
    # The service worker takes our open tab to the hold.
    firefox.switch_to_window_showing(f"{live_server}/library/holds/{hold_id}", timeout=45)
    assert "Your book is ready" in firefox.text("#hold-status")
    firefox.screenshot(tmp_path / "hold.png")
    # The click also marked it read in the inbox (/n/<id> and the service worker both do).
    wait_until(lambda: _read_at(app, hold_id) is not None, "the notification marked read")


def _read_at(app, hold_id: int):
    with app.app_context():
        return db.session.scalar(
            select(Notification.read_at).where(Notification.dedupe_key == f"hold-ready:{hold_id}")
        )
