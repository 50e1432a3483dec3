"""Replace, never stack, in Firefox: two notifications about one hold show as one on the
device, and once the hold is picked up the next page load closes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.helpers import enable_push, log_in_firefox, wait_until
from webpush_server.extensions import db
from webpush_server.library import services
from webpush_server.library.models import Hold
from webpush_server.timeutil import utcnow

pytestmark = pytest.mark.browser


def test_two_notifications_about_one_hold_show_as_one_then_close_when_settled(
    firefox, live_server, live_worker, push_service, app, make_user, login_as
):
    make_user("desk@webpush-server.dev", role="librarian")
    make_user("borrower@webpush-server.dev")
    make_user("patron@webpush-server.dev", name="Patron")
    with app.app_context():
        book, (copy_id,) = services.add_book("Kindred", "Octavia E. Butler", None, 1)
        book_id = book.id
        services.check_out(copy_id, "borrower@webpush-server.dev")

    log_in_firefox(firefox, live_server, "patron@webpush-server.dev")
    endpoint = enable_push(firefox, live_server)
    firefox.navigate(f"{live_server}/library/books/{book_id}")
    firefox.click("#reserve")
    firefox.wait_until("location.pathname.startsWith('/library/holds/')")
    hold_id = int(firefox.script("return location.pathname.split('/').pop()"))
    # Away from the site: both notices go by Web Push.
    firefox.navigate("about:blank")

    desk = login_as("desk@webpush-server.dev", "librarian")
    assert desk.post(f"/api/library/copies/{copy_id}/return").json["hold_id"] == hold_id
    push_service.wait_for(lambda pushes: any(p.endpoint == endpoint for p in pushes), timeout=60)
    with app.app_context():
        db.session.execute(update(Hold).values(pickup_deadline=utcnow() + timedelta(hours=20)))
        db.session.commit()
        assert services.remind([hold_id]) == 1
    pushes = push_service.wait_for(
        lambda pushes: len([p for p in pushes if p.endpoint == endpoint]) >= 2, timeout=60
    )
    mine = [p for p in pushes if p.endpoint == endpoint]
    assert {p.topic for p in mine} == {f"hold-{hold_id}"}  # one Topic: replaced if undelivered

    firefox.navigate(f"{live_server}/notifications")
    shown = firefox.wait_for_notification("Pick up Kindred by " + _deadline(app, hold_id), 60)
    assert shown["tag"] == f"hold-{hold_id}"
    # The device shows one notification about the hold: the newer replaced the older.
    wait_until(lambda: len(firefox.notifications()) == 1, "one notification on the device")
    assert [n["tag"] for n in firefox.notifications()] == [f"hold-{hold_id}"]

    # Picked up: the hold is settled, so the next page load closes what the device shows.
    assert desk.post(f"/api/library/holds/{hold_id}/pickup").status_code == 201
    firefox.navigate(f"{live_server}/library/")
    wait_until(lambda: firefox.notifications() == [], "the settled hold's notification closed")


def _deadline(app, hold_id: int) -> str:
    from webpush_server.timeutil import local_time

    with app.app_context():
        return local_time(db.session.get_one(Hold, hold_id).pickup_deadline, "notice")
