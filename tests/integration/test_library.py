"""The library through HTTP and the real worker: reserve, check in, push, pick up, and time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.factories import add_book
from tests.helpers import Api, rows
from webpush_server.extensions import db
from webpush_server.library.models import Copy, Hold, Loan
from webpush_server.notifications.models import Notification
from webpush_server.timeutil import utcnow


@pytest.fixture
def librarian(login_as) -> Api:
    return login_as("desk@webpush-server.dev", "librarian", name="Desk")


def lend(librarian: Api, copy_id: int, email: str) -> None:
    response = librarian.post("/api/library/loans", json={"copy_id": copy_id, "user_email": email})
    assert response.status_code == 201, response.json


def test_reserve_check_in_push_arrives_then_pick_up(
    app, login_as, librarian, push_service, run_worker
):
    book_id, (copy_id,) = add_book(librarian)
    reader = login_as("ana@webpush-server.dev")
    waiter = login_as("bo@webpush-server.dev")
    device = push_service.new_subscription()
    assert waiter.post("/api/push/subscriptions", json=device.as_json()).status_code == 201
    lend(librarian, copy_id, reader.email)

    reserved = waiter.post(f"/api/library/books/{book_id}/holds")
    assert reserved.status_code == 201
    assert reserved.json["status"] == "waiting" and reserved.json["position"] == 1
    hold_id = reserved.json["id"]

    returned = librarian.post(f"/api/library/copies/{copy_id}/return")
    assert returned.json == {"copy_status": "held", "hold_id": hold_id}
    (hold,) = waiter.get("/api/library/holds").json["holds"]
    assert hold["status"] == "ready" and hold["pickup_deadline"]

    run_worker()
    (push,) = push_service.wait_for_count(1)
    assert push.error is None
    assert push.notification["title"] == "Your book is ready: Piranesi"
    assert push.notification["url"] == f"/library/holds/{hold_id}"
    assert push.notification["kind"] == "book_available"
    assert push.urgency == "high" and push.topic == f"hold-{hold_id}"
    # TTL lasts until the pickup deadline: three days by default.
    assert 3 * 86400 - 120 < push.ttl <= 3 * 86400

    picked = librarian.post(f"/api/library/holds/{hold_id}/pickup")
    assert picked.status_code == 201
    (loan,) = rows(app, Loan, Loan.returned_at.is_(None))
    assert loan.id == picked.json["loan_id"] and loan.copy_id == copy_id
    assert rows(app, Hold)[0].status == "fulfilled"
    assert rows(app, Copy)[0].status == "loaned"


def test_queue_is_first_come_first_served(login_as, librarian):
    book_id, (copy_id,) = add_book(librarian)
    lend(librarian, copy_id, login_as("out@webpush-server.dev").email)
    waiters = [login_as(f"q{i}@webpush-server.dev") for i in range(3)]
    positions = [w.post(f"/api/library/books/{book_id}/holds").json["position"] for w in waiters]
    assert positions == [1, 2, 3]
    waiters[0].delete(
        f"/api/library/holds/{waiters[0].get('/api/library/holds').json['holds'][0]['id']}"
    )
    assert waiters[2].get("/api/library/holds").json["holds"][0]["position"] == 2
    librarian.post(f"/api/library/copies/{copy_id}/return")
    statuses = [w.get("/api/library/holds").json["holds"][0]["status"] for w in waiters]
    assert statuses == ["cancelled", "ready", "waiting"]


def test_a_free_copy_is_set_aside_at_once(login_as, librarian):
    book_id, _ = add_book(librarian)
    reserved = login_as("now@webpush-server.dev").post(f"/api/library/books/{book_id}/holds")
    assert reserved.json["status"] == "ready" and reserved.json["position"] is None


def test_scan_finds_what_the_event_path_missed(
    app, login_as, librarian, push_service, run_worker, runner
):
    book_id, (copy_id,) = add_book(librarian)
    lend(librarian, copy_id, login_as("gone@webpush-server.dev").email)
    waiter = login_as("scan@webpush-server.dev")
    device = push_service.new_subscription()
    waiter.post("/api/push/subscriptions", json=device.as_json())
    hold_id = waiter.post(f"/api/library/books/{book_id}/holds").json["id"]
    # Data corrected by hand: the copy is back on the shelf without a check-in.
    with app.app_context():
        db.session.execute(update(Loan).values(returned_at=utcnow()))
        db.session.execute(update(Copy).values(status="shelf"))
        db.session.commit()
    result = runner.invoke(args=["jobs", "run", "detect-available-books"])
    assert result.exit_code == 0 and "detect-available-books: 1" in result.output
    assert rows(app, Hold)[0].status == "ready"
    again = runner.invoke(args=["jobs", "run", "detect-available-books"])
    assert "detect-available-books: 0" in again.output
    run_worker()
    (push,) = push_service.wait_for_count(1)
    assert push.notification["url"] == f"/library/holds/{hold_id}"
    assert len(rows(app, Notification)) == 1


def test_added_copies_go_to_waiting_holds(app, login_as, librarian):
    book_id, (copy_id,) = add_book(librarian)
    lend(librarian, copy_id, login_as("has@webpush-server.dev").email)
    waiter = login_as("wants@webpush-server.dev")
    waiter.post(f"/api/library/books/{book_id}/holds")
    added = librarian.post(f"/api/library/books/{book_id}/copies", json={"count": 2})
    assert added.status_code == 201 and len(added.json["copy_ids"]) == 2
    assert waiter.get("/api/library/holds").json["holds"][0]["status"] == "ready"
    shelf = [c.status for c in rows(app, Copy)]
    assert sorted(shelf) == ["held", "loaned", "shelf"]


def expire_now(app, hold_id: int) -> None:
    with app.app_context():
        db.session.execute(
            update(Hold)
            .where(Hold.id == hold_id)
            .values(pickup_deadline=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()


def test_expired_hold_passes_the_copy_on_then_to_the_shelf(
    app, login_as, librarian, runner, push_service, run_worker
):
    book_id, (copy_id,) = add_book(librarian)
    lend(librarian, copy_id, login_as("first@webpush-server.dev").email)
    late, next_ = (login_as(f"{n}@webpush-server.dev") for n in ("late", "next"))
    for who in (late, next_):
        who.post("/api/push/subscriptions", json=push_service.new_subscription().as_json())
        who.post(f"/api/library/books/{book_id}/holds")
    librarian.post(f"/api/library/copies/{copy_id}/return")
    late_hold, next_hold = rows(app, Hold)
    expire_now(app, late_hold.id)
    result = runner.invoke(args=["jobs", "run", "expire-holds"])
    assert "expire-holds: 1" in result.output
    late_hold, next_hold = rows(app, Hold)
    assert (late_hold.status, next_hold.status) == ("expired", "ready")
    assert next_hold.copy_id == copy_id
    run_worker()
    # ready (late), next moved up to 1, expired (late), ready (next)
    pushes = push_service.wait_for_count(4)
    assert sorted(p.notification["kind"] for p in pushes) == [
        "book_available",
        "book_available",
        "hold_expired",
        "hold_position",
    ]
    expired = next(p for p in pushes if p.notification["kind"] == "hold_expired")
    assert expired.topic == f"hold-{late_hold.id}" and expired.urgency == "normal"
    expire_now(app, next_hold.id)
    runner.invoke(args=["jobs", "run", "expire-holds"])
    assert rows(app, Copy)[0].status == "shelf"


def test_reminder_one_day_before_the_deadline_once(app, login_as, librarian, runner):
    book_id, _ = add_book(librarian)
    waiter = login_as("soon@webpush-server.dev")
    hold_id = waiter.post(f"/api/library/books/{book_id}/holds").json["id"]
    assert "remind-holds: 0" in runner.invoke(args=["jobs", "run", "remind-holds"]).output
    with app.app_context():
        db.session.execute(update(Hold).values(pickup_deadline=utcnow() + timedelta(hours=20)))
        db.session.commit()
    assert "remind-holds: 1" in runner.invoke(args=["jobs", "run", "remind-holds"]).output
    assert "remind-holds: 0" in runner.invoke(args=["jobs", "run", "remind-holds"]).output
    kinds = [n.kind for n in rows(app, Notification)]
    assert kinds == ["book_available", "hold_expiring"]
    (reminder,) = rows(app, Notification, Notification.kind == "hold_expiring")
    assert reminder.url == f"/library/holds/{hold_id}" and reminder.topic == f"hold-{hold_id}"


def test_desk_refuses_what_cannot_be_done(app, login_as, librarian):
    book_id, (copy_id,) = add_book(librarian)
    reader = login_as("r1@webpush-server.dev")
    other = login_as("r2@webpush-server.dev")
    lend(librarian, copy_id, reader.email)
    again = librarian.post(
        "/api/library/loans", json={"copy_id": copy_id, "user_email": other.email}
    )
    assert again.status_code == 409 and again.json["error"]["field"] == "copy_id"
    assert (
        reader.post(f"/api/library/books/{book_id}/holds").json["error"]["code"]
        == "already_borrowing"
    )
    other.post(f"/api/library/books/{book_id}/holds")
    assert other.post(f"/api/library/books/{book_id}/holds").status_code == 409
    librarian.post(f"/api/library/copies/{copy_id}/return")  # now held for `other`
    stolen = librarian.post(
        "/api/library/loans", json={"copy_id": copy_id, "user_email": reader.email}
    )
    assert stolen.status_code == 409 and stolen.json["error"]["code"] == "held"
    assert (
        librarian.post(f"/api/library/copies/{copy_id}/return").json["error"]["code"]
        == "not_on_loan"
    )
    lend(librarian, copy_id, other.email)  # the patron it was held for: fulfils the hold
    assert rows(app, Hold)[0].status == "fulfilled"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"author": "A", "copies": 1}, "title"),
        ({"title": "T", "author": "A", "copies": 0}, "copies"),
        ({"title": "T", "author": "A", "copies": "many"}, "copies"),
        ({"title": "T", "author": "A", "copies": 1, "isbn": "978-0-00-000000-1"}, "isbn"),
        ({"title": "T" * 301, "author": "A", "copies": 1}, "title"),
    ],
)
def test_add_book_validation_names_the_field(librarian, app, body, field):
    response = librarian.post("/api/library/books", json=body)
    assert response.status_code == 400 and response.json["error"]["field"] == field
    assert rows(app, Copy) == []


def test_isbn_is_normalised_and_unique(librarian):
    first = librarian.post(
        "/api/library/books",
        json={"title": "Dune", "author": "Frank Herbert", "isbn": "978-0-441-17271-9", "copies": 1},
    )
    assert first.status_code == 201
    dup = librarian.post(
        "/api/library/books",
        json={"title": "Dune", "author": "Frank Herbert", "isbn": "9780441172719", "copies": 1},
    )
    assert dup.status_code == 409 and dup.json["error"]["field"] == "isbn"


def test_patrons_cannot_use_the_desk_or_see_others_holds(app, login_as, librarian):
    book_id, (copy_id,) = add_book(librarian)
    mallory = login_as("mallory@webpush-server.dev")
    alice = login_as("alice@webpush-server.dev")
    lend(librarian, copy_id, login_as("c@webpush-server.dev").email)
    hold_id = alice.post(f"/api/library/books/{book_id}/holds").json["id"]
    assert mallory.get("/library/desk").status_code == 403
    assert (
        mallory.post(
            "/api/library/loans", json={"copy_id": copy_id, "user_email": mallory.email}
        ).status_code
        == 403
    )
    assert mallory.post(f"/api/library/copies/{copy_id}/return").status_code == 403
    assert mallory.post(f"/api/library/holds/{hold_id}/pickup").status_code == 403
    assert mallory.post("/api/library/books", json={"title": "x"}).status_code == 403
    assert mallory.get("/api/library/holds?all=1").status_code == 403
    assert mallory.get("/api/library/holds").json["holds"] == []
    assert mallory.delete(f"/api/library/holds/{hold_id}").status_code == 404
    assert mallory.get(f"/library/holds/{hold_id}").status_code == 404
    assert rows(app, Hold)[0].status == "waiting"
    everyone = librarian.get("/api/library/holds?all=1").json["holds"]
    assert [(h["id"], h["user_email"]) for h in everyone] == [(hold_id, alice.email)]
    assert librarian.client.get("/library/desk").status_code == 200


def test_pages_show_the_queue_and_the_desk_gives_feedback(app, login_as, librarian):
    book_id, (copy_id,) = add_book(librarian, title="Kindred")
    reader = login_as("page@webpush-server.dev")
    lend(librarian, copy_id, login_as("x@webpush-server.dev").email)
    catalogue = reader.get("/library/?q=kind").text
    assert "Kindred" in catalogue and 'data-field="waiting_holds">0<' in catalogue
    page = reader.get(f"/library/books/{book_id}").text
    assert 'id="reserve"' in page
    reserved = reader.client.post(
        f"/library/books/{book_id}/reserve", data={"csrf_token": reader.csrf}, follow_redirects=True
    )
    assert "You are number 1 in the queue" in reserved.text
    assert "Reserve</button>" not in reader.get(f"/library/books/{book_id}").text
    refused = librarian.client.post(
        "/library/desk/checkin",
        data={"csrf_token": librarian.csrf, "copy_id": "999"},
        follow_redirects=True,
    )
    assert "There is no copy 999." in refused.text
    done = librarian.client.post(
        "/library/desk/checkin",
        data={"csrf_token": librarian.csrf, "copy_id": str(copy_id)},
        follow_redirects=True,
    )
    assert "set aside for hold" in done.text and "page@webpush-server.dev" in done.text
    assert "Your book is ready" in reader.get(f"/library/holds/{rows(app, Hold)[0].id}").text
