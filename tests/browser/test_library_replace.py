"""Replace, never stack, in Firefox: two notifications about one hold show as one on the
device, and once the hold is picked up the next page load closes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from marionette_driver.errors import NoSuchWindowException
from sqlalchemy import update

from tests.browser.firefox import Firefox
from tests.helpers import enable_push, log_in_firefox, wait_until
from webpush_server.extensions import db
from webpush_server.library import services
from webpush_server.library.models import Hold
from webpush_server.timeutil import utcnow

pytestmark = pytest.mark.browser


def alerts_shown(firefox: Firefox, *, hold_open: bool = True) -> list[str]:
    """Return the titles of Firefox's alert windows, pausing each one's 20 s fade-out.

    Headless Firefox (alerts.useSystemBackend=false) closes an alert window when its CSS
    animation ends, about 20 s after it opened; paused, it stays until the notification is
    replaced or closed, as it would in a desktop's notification centre.
    """
    client = firefox.client
    content_window = client.current_window_handle
    client.set_context(client.CONTEXT_CHROME)
    titles = []
    try:
        for handle in client.chrome_window_handles:
            try:
                client.switch_to_window(handle, focus=False)
                title = client.execute_script(
                    "const box = document.getElementById('alertBox');"
                    "if (!box) return null;"
                    "if (arguments[0]) box.style.animationPlayState = 'paused';"
                    "return document.getElementById('alertTitleLabel').value;",
                    script_args=[hold_open],
                )
            except NoSuchWindowException:
                continue  # closed since it was listed (replaced by a newer one): not shown
            if title is not None:
                titles.append(title)
    finally:
        client.set_context(client.CONTEXT_CONTENT)
        client.switch_to_window(content_window)
    return titles


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
    wait_until(
        lambda: alerts_shown(firefox) == ["Your book is ready: Kindred"],
        "the first notification shown",
        timeout=60,
    )
    with app.app_context():
        db.session.execute(update(Hold).values(pickup_deadline=utcnow() + timedelta(hours=20)))
        db.session.commit()
        assert services.remind([hold_id]) == 1
    pushes = push_service.wait_for(
        lambda pushes: len([p for p in pushes if p.endpoint == endpoint]) >= 2, timeout=60
    )
    mine = [p for p in pushes if p.endpoint == endpoint]
    assert {p.topic for p in mine} == {f"hold-{hold_id}"}  # one Topic: replaced if undelivered

    reminder = "Pick up Kindred by " + _deadline(app, hold_id)
    # The device shows one notification about the hold: the newer replaced the older.
    wait_until(lambda: alerts_shown(firefox) == [reminder], "the reminder replacing it", 60)
    firefox.navigate(f"{live_server}/notifications")
    shown = firefox.notifications()
    assert [(n["title"], n["tag"]) for n in shown] == [(reminder, f"hold-{hold_id}")]

    # Picked up while no page of ours is open: the hold is settled, so the next page load
    # closes what the device shows (an open page hears it live and closes it at once).
    firefox.navigate("about:blank")
    assert desk.post(f"/api/library/holds/{hold_id}/pickup").status_code == 201
    assert alerts_shown(firefox) == [reminder]  # still shown: nothing of ours ran yet
    firefox.navigate(f"{live_server}/library/")
    wait_until(lambda: firefox.notifications() == [], "the settled hold's notification closed")
    assert alerts_shown(firefox, hold_open=False) == []


def _deadline(app, hold_id: int) -> str:
    from webpush_server.timeutil import local_time

    with app.app_context():
        return local_time(db.session.get_one(Hold, hold_id).pickup_deadline, "notice")
