"""Library v2 through HTTP and the jobs: loan reminders, renewals, suspended and unneeded holds,
the queue moving up, the library's cancel with a note, and settled holds and loans marking
their notices read (in the inbox and live)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import websocket
from sqlalchemy import select, update

from tests.factories import add_book
from tests.helpers import Api, rows
from webpush_server.extensions import db
from webpush_server.library.models import Hold, Loan
from webpush_server.notifications.models import Notification
from webpush_server.timeutil import app_zone, utcnow


@pytest.fixture
def librarian(login_as) -> Api:
    return login_as("desk@webpush-server.dev", "librarian", name="Desk")


def lend(librarian: Api, copy_id: int, email: str) -> int:
    response = librarian.post("/api/library/loans", json={"copy_id": copy_id, "user_email": email})
    assert response.status_code == 201, response.json
    return response.json["id"]


def patch(who: Api, url: str, body):
    return who.client.patch(url, json=body, headers={"X-CSRFToken": who.csrf})


def today(app) -> date:
    with app.app_context():
        return utcnow().astimezone(app_zone()).date()


def set_due(app, loan_id: int, due: date) -> None:
    with app.app_context():
        db.session.execute(update(Loan).where(Loan.id == loan_id).values(due_date=due))
        db.session.commit()


def kinds(app, user_email: str | None = None) -> list[str]:
    with app.app_context():
        stmt = select(Notification.kind).order_by(Notification.id)
        if user_email:
            from webpush_server.auth.services import find_user

            user = find_user(user_email)
            assert user is not None
            stmt = stmt.where(Notification.user_id == user.id)
        return list(db.session.scalars(stmt))


def run_job(runner, name: str, day: date) -> str:
    result = runner.invoke(args=["jobs", "run", name, "--param", f"date={day}"])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


# -- loans -----------------------------------------------------------------------------------


def test_loan_reminders_fire_once_each_at_their_moment(app, login_as, librarian, runner):
    _, (copy_id,) = add_book(librarian)
    reader = login_as("reader@webpush-server.dev")
    loan_id = lend(librarian, copy_id, reader.email)
    due = date(2027, 3, 20)
    set_due(app, loan_id, due)

    # (day the job runs, what it records that day): each kind once, at its moment.
    expected = {
        due - timedelta(days=3): 0,
        due - timedelta(days=2): 1,  # loan_due_soon (days_before = 2)
        due - timedelta(days=1): 0,
        due: 0,
        due + timedelta(days=1): 1,  # loan_overdue, 1 day
        due + timedelta(days=2): 0,
        due + timedelta(days=6): 0,
        due + timedelta(days=7): 1,  # 7 days
        due + timedelta(days=8): 0,
        due + timedelta(days=14): 1,  # 14 days
        due + timedelta(days=15): 0,
        due + timedelta(days=30): 0,
    }
    for day, new in expected.items():
        assert run_job(runner, "remind-loans", day) == f"remind-loans: {new}", day
    # The same instance again is complete and sends nothing.
    again = runner.invoke(args=["jobs", "run", "remind-loans", "--param", f"date={due}"])
    assert "already complete" in again.output
    assert kinds(app) == ["loan_due_soon", "loan_overdue", "loan_overdue", "loan_overdue"]
    notices = rows(app, Notification)
    assert {n.topic for n in notices} == {n.tag for n in notices} == {f"loan-{loan_id}"}
    assert notices[0].url == f"/library/loans#loan-{loan_id}"
    assert "due on 20 Mar 2027" in notices[0].title or "20 Mar 2027" in notices[0].body


def test_a_borrowers_days_before_preference_moves_their_due_soon_reminder(
    app, login_as, librarian, runner
):
    _, (first, second) = add_book(librarian, copies=2)
    early = login_as("early@webpush-server.dev")
    usual = login_as("usual@webpush-server.dev")
    answer = early.put("/api/preferences", json={"kinds": {"loan_due_soon": {"days_before": 5}}})
    assert answer.status_code == 200, answer.json
    assert early.get("/api/preferences").json["kinds"]["loan_due_soon"]["days_before"] == 5
    due = date(2027, 6, 20)
    for copy_id, who in ((first, early), (second, usual)):
        set_due(app, lend(librarian, copy_id, who.email), due)

    # Five days before: only the borrower who asked for five hears; the default (2) waits.
    assert run_job(runner, "remind-loans", due - timedelta(days=6)) == "remind-loans: 0"
    assert run_job(runner, "remind-loans", due - timedelta(days=5)) == "remind-loans: 1"
    assert kinds(app, early.email) == ["loan_due_soon"] and kinds(app, usual.email) == []
    assert run_job(runner, "remind-loans", due - timedelta(days=4)) == "remind-loans: 0"
    assert run_job(runner, "remind-loans", due - timedelta(days=2)) == "remind-loans: 1"
    # Once each, however many days the window spans.
    assert kinds(app, early.email) == ["loan_due_soon"] == kinds(app, usual.email)


def test_a_missed_day_catches_up_and_a_returned_loan_is_not_reminded(
    app, login_as, librarian, runner
):
    _, (first, second) = add_book(librarian, copies=2)
    reader = login_as("late@webpush-server.dev")
    other = login_as("other@webpush-server.dev")
    kept = lend(librarian, first, reader.email)
    returned = lend(librarian, second, other.email)
    due = date(2027, 5, 1)
    set_due(app, kept, due)
    set_due(app, returned, due)
    assert librarian.post(f"/api/library/copies/{second}/return").status_code == 200
    # The job did not run on day 7; day 8 sends the 7-day reminder, once.
    assert run_job(runner, "remind-loans", due + timedelta(days=8)) == "remind-loans: 1"
    assert run_job(runner, "remind-loans", due + timedelta(days=9)) == "remind-loans: 0"
    (notice,) = rows(app, Notification)
    assert notice.kind == "loan_overdue" and notice.dedupe_key.endswith(":7")


def test_renewal_counts_from_the_old_due_date_at_most_twice(app, login_as, librarian, runner):
    _, (copy_id,) = add_book(librarian)
    reader = login_as("renew@webpush-server.dev")
    loan_id = lend(librarian, copy_id, reader.email)
    due = date(2027, 1, 10)
    set_due(app, loan_id, due)

    first = reader.post(f"/api/library/loans/{loan_id}/renew")
    assert first.status_code == 200, first.json
    assert first.json == {"id": loan_id, "due_date": "2027-01-24", "renewals": 1}
    # A librarian may renew it too.
    second = librarian.post(f"/api/library/loans/{loan_id}/renew")
    assert second.json["due_date"] == "2027-02-07" and second.json["renewals"] == 2
    third = reader.post(f"/api/library/loans/{loan_id}/renew")
    assert third.status_code == 409
    assert third.json["error"]["code"] == "renewal_limit"
    assert third.json["error"]["field"] == "loan_id"
    assert rows(app, Loan)[0].due_date == date(2027, 2, 7)
    renewed = rows(app, Notification)
    assert [n.kind for n in renewed] == ["loan_renewed", "loan_renewed"]
    assert {n.topic for n in renewed} == {f"loan-{loan_id}"}
    assert renewed[0].urgency == "low"


def test_renewal_is_refused_while_someone_waits_and_to_others(app, login_as, librarian):
    book_id, (copy_id,) = add_book(librarian)
    reader = login_as("busy@webpush-server.dev")
    loan_id = lend(librarian, copy_id, reader.email)
    stranger = login_as("stranger@webpush-server.dev")
    assert stranger.post(f"/api/library/loans/{loan_id}/renew").status_code == 404
    assert reader.post("/api/library/loans/999999/renew").status_code == 404
    assert stranger.post(f"/api/library/books/{book_id}/holds").status_code == 201
    queued = reader.post(f"/api/library/loans/{loan_id}/renew")
    assert queued.status_code == 409 and queued.json["error"]["code"] == "queue"
    assert rows(app, Loan)[0].renewals == 0
    assert "loan_renewed" not in kinds(app)


# -- holds -----------------------------------------------------------------------------------


def test_suspended_hold_keeps_its_place_is_skipped_and_resumes_by_itself(
    app, login_as, librarian, runner
):
    book_id, (copy_id,) = add_book(librarian)
    lend(librarian, copy_id, login_as("out@webpush-server.dev").email)
    away, next_ = login_as("away@webpush-server.dev"), login_as("next@webpush-server.dev")
    away_id = away.post(f"/api/library/books/{book_id}/holds").json["id"]
    next_id = next_.post(f"/api/library/books/{book_id}/holds").json["id"]
    until = today(app) + timedelta(days=5)

    changed = patch(away, f"/api/library/holds/{away_id}", {"suspended_until": until.isoformat()})
    assert changed.status_code == 200, changed.json
    assert changed.json["suspended_until"] == until.isoformat()
    assert changed.json["position"] == 1 and changed.json["not_needed_after"] is None
    listed = away.get("/api/library/holds").json["holds"][0]
    assert listed["suspended_until"] == until.isoformat() and listed["position"] == 1

    # A returned copy passes the suspended hold by.
    assert librarian.post(f"/api/library/copies/{copy_id}/return").json["hold_id"] == next_id
    assert [h.status for h in rows(app, Hold)] == ["waiting", "ready"]

    # Before its day nothing resumes; on it, once, with hold_resumed.
    assert run_job(runner, "resume-holds", until - timedelta(days=1)) == "resume-holds: 0"
    assert run_job(runner, "resume-holds", until) == "resume-holds: 1"
    assert run_job(runner, "resume-holds", until + timedelta(days=1)) == "resume-holds: 0"
    hold = rows(app, Hold, Hold.id == away_id)[0]
    assert hold.status == "waiting" and hold.suspended_until is None
    (resumed,) = rows(app, Notification, Notification.kind == "hold_resumed")
    assert resumed.topic == f"hold-{away_id}" and resumed.url == f"/library/holds/{away_id}"


def test_resuming_by_hand_takes_a_free_copy(app, login_as, librarian):
    book_id, (copy_id,) = add_book(librarian)
    lend(librarian, copy_id, login_as("out2@webpush-server.dev").email)
    patron = login_as("back@webpush-server.dev")
    hold_id = patron.post(f"/api/library/books/{book_id}/holds").json["id"]
    until = (today(app) + timedelta(days=3)).isoformat()
    suspended = patch(patron, f"/api/library/holds/{hold_id}", {"suspended_until": until})
    assert suspended.status_code == 200
    librarian.post(f"/api/library/copies/{copy_id}/return")
    assert rows(app, Hold)[0].status == "waiting"  # skipped: the copy stays on the shelf
    resumed = patch(patron, f"/api/library/holds/{hold_id}", {"suspended_until": None})
    assert resumed.status_code == 200 and resumed.json["status"] == "ready"
    assert kinds(app, patron.email) == ["book_available"]


def test_not_needed_after_expires_the_hold_and_the_next_moves_up(app, login_as, librarian, runner):
    book_id, (copy_id,) = add_book(librarian)
    lend(librarian, copy_id, login_as("out3@webpush-server.dev").email)
    first, second = login_as("first@webpush-server.dev"), login_as("second@webpush-server.dev")
    first_id = first.post(f"/api/library/books/{book_id}/holds").json["id"]
    second_id = second.post(f"/api/library/books/{book_id}/holds").json["id"]
    last = today(app) + timedelta(days=2)
    set_it = patch(first, f"/api/library/holds/{first_id}", {"not_needed_after": last.isoformat()})
    assert set_it.status_code == 200 and set_it.json["not_needed_after"] == last.isoformat()

    assert run_job(runner, "resume-holds", last) == "resume-holds: 0"
    assert run_job(runner, "resume-holds", last + timedelta(days=1)) == "resume-holds: 1"
    assert rows(app, Hold, Hold.id == first_id)[0].status == "expired"
    assert second.get("/api/library/holds").json["holds"][0]["position"] == 1
    (moved,) = rows(app, Notification, Notification.kind == "hold_position")
    assert moved.topic == f"hold-{second_id}" and "You are next" in moved.title
    assert kinds(app, first.email) == []  # the patron chose the date: nothing to tell


def test_place_moving_up_is_told_at_most_once_a_day(app, login_as, librarian):
    book_id, (copy_id,) = add_book(librarian)
    lend(librarian, copy_id, login_as("out4@webpush-server.dev").email)
    ahead = [login_as(f"ahead{i}@webpush-server.dev") for i in range(2)]
    last = login_as("last@webpush-server.dev")
    ids = [p.post(f"/api/library/books/{book_id}/holds").json["id"] for p in [*ahead, last]]
    assert ahead[0].delete(f"/api/library/holds/{ids[0]}").status_code == 204
    assert ahead[1].delete(f"/api/library/holds/{ids[1]}").status_code == 204
    assert last.get("/api/library/holds").json["holds"][0]["position"] == 1
    told = rows(app, Notification, Notification.kind == "hold_position")
    # ahead1 moved up once; last moved up twice today but is told once.
    assert sorted(n.topic for n in told) == sorted([f"hold-{ids[1]}", f"hold-{ids[2]}"])
    (for_last,) = [n for n in told if n.topic == f"hold-{ids[2]}"]
    assert for_last.title.startswith("You are number 2")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"suspended_until": "tomorrow"}, "suspended_until"),
        ({"suspended_until": "2001-01-01"}, "suspended_until"),
        ({"suspended_until": 20270101}, "suspended_until"),
        ({"not_needed_after": "2001-01-01"}, "not_needed_after"),
        ({"not_needed_after": "31/12/2099"}, "not_needed_after"),
        ({"position": 1}, "position"),
        ({}, "suspended_until"),
    ],
)
def test_hold_changes_refuse_bad_input_naming_the_field(app, login_as, librarian, body, field):
    book_id, (copy_id,) = add_book(librarian)
    lend(librarian, copy_id, login_as("out5@webpush-server.dev").email)
    patron = login_as("picky@webpush-server.dev")
    hold_id = patron.post(f"/api/library/books/{book_id}/holds").json["id"]
    refused = patch(patron, f"/api/library/holds/{hold_id}", body)
    assert refused.status_code == 400
    assert refused.json["error"]["field"] == field
    hold = rows(app, Hold)[0]
    assert hold.suspended_until is None and hold.not_needed_after is None


def test_hold_changes_refuse_others_and_holds_not_waiting(app, login_as, librarian):
    book_id, _ = add_book(librarian)
    patron = login_as("ready@webpush-server.dev")
    hold_id = patron.post(f"/api/library/books/{book_id}/holds").json["id"]  # ready at once
    later = (today(app) + timedelta(days=3)).isoformat()
    stranger = login_as("nosy@webpush-server.dev")
    assert (
        patch(stranger, f"/api/library/holds/{hold_id}", {"suspended_until": later}).status_code
        == 404
    )
    not_waiting = patch(patron, f"/api/library/holds/{hold_id}", {"suspended_until": later})
    assert not_waiting.status_code == 409
    assert not_waiting.json["error"]["code"] == "not_waiting"
    # Both ends: the hold would end before its suspension does.
    book2, (copy2,) = add_book(librarian, title="Kindred")
    lend(librarian, copy2, stranger.email)
    other = patron.post(f"/api/library/books/{book2}/holds").json["id"]
    crossed = patch(
        patron,
        f"/api/library/holds/{other}",
        {"suspended_until": later, "not_needed_after": today(app).isoformat()},
    )
    assert crossed.status_code == 400 and crossed.json["error"]["field"] == "not_needed_after"
    # Not logged in: 401.
    anonymous = patron.client.application.test_client()
    assert anonymous.patch(f"/api/library/holds/{other}", json={}).status_code in (400, 401)


def test_library_cancel_tells_the_patron_with_the_note(app, login_as, librarian):
    book_id, (copy_id,) = add_book(librarian)
    patron = login_as("told@webpush-server.dev")
    hold_id = patron.post(f"/api/library/books/{book_id}/holds").json["id"]  # ready
    # A patron cancelling their own hold writes no note.
    noted = patron.delete(f"/api/library/holds/{hold_id}", json={"note": "bye"})
    assert noted.status_code == 403 and noted.json["error"]["field"] == "note"
    too_long = librarian.delete(f"/api/library/holds/{hold_id}", json={"note": "x" * 501})
    assert too_long.status_code == 400 and too_long.json["error"]["field"] == "note"
    assert rows(app, Hold)[0].status == "ready"

    note = "The copy came back damaged; a new one is ordered."
    assert librarian.delete(f"/api/library/holds/{hold_id}", json={"note": note}).status_code == 204
    hold = rows(app, Hold)[0]
    assert hold.status == "cancelled" and hold.note == note
    available, cancelled = rows(app, Notification)
    assert (available.kind, cancelled.kind) == ("book_available", "hold_cancelled")
    assert note in cancelled.body and cancelled.topic == f"hold-{hold_id}"
    # Replace, never stack: the older notice is read; the cancellation is new.
    assert available.read_at is not None and cancelled.read_at is None
    again = librarian.delete(f"/api/library/holds/{hold_id}")
    assert again.status_code == 409 and again.json["error"]["code"] == "not_active"
    page = patron.get(f"/library/holds/{hold_id}").text
    assert note in page


def test_own_cancel_sends_nothing_new(app, login_as, librarian):
    book_id, _ = add_book(librarian)
    patron = login_as("mine@webpush-server.dev")
    hold_id = patron.post(f"/api/library/books/{book_id}/holds").json["id"]
    assert patron.delete(f"/api/library/holds/{hold_id}").status_code == 204
    (available,) = rows(app, Notification)
    assert available.kind == "book_available" and available.read_at is not None


# -- replace, never stack --------------------------------------------------------------------


def test_pickup_and_return_mark_older_notices_read_and_list_the_settled_tags(
    app, login_as, librarian, runner
):
    book_id, (copy_id,) = add_book(librarian)
    patron = login_as("settle@webpush-server.dev")
    hold_id = patron.post(f"/api/library/books/{book_id}/holds").json["id"]
    with app.app_context():
        db.session.execute(update(Hold).values(pickup_deadline=utcnow() + timedelta(hours=20)))
        db.session.commit()
    runner.invoke(args=["jobs", "run", "remind-holds"])
    assert patron.get("/api/notifications").json["unread_count"] == 2
    loan_id = librarian.post(f"/api/library/holds/{hold_id}/pickup").json["loan_id"]
    inbox = patron.get("/api/notifications").json
    assert inbox["unread_count"] == 0
    assert all(n["read_at"] for n in inbox["notifications"])
    assert {n["tag"] for n in inbox["notifications"]} == {f"hold-{hold_id}"}

    assert patron.post(f"/api/library/loans/{loan_id}/renew").status_code == 200
    assert patron.get("/api/notifications").json["unread_count"] == 1
    librarian.post(f"/api/library/copies/{copy_id}/return")
    assert patron.get("/api/notifications").json["unread_count"] == 0
    with app.app_context():
        newest = {
            tag: max(ids)
            for tag, ids in (
                (t, [n.id for n in rows(app, Notification) if n.tag == t])
                for t in (f"hold-{hold_id}", f"loan-{loan_id}")
            )
        }
    settled = patron.get("/api/notifications/resolved").json["resolved"]
    assert {(r["tag"], r["last_id"]) for r in settled} == set(newest.items())
    stranger = login_as("nobody@webpush-server.dev")
    assert stranger.get("/api/notifications/resolved").json == {"resolved": []}


def test_an_open_tab_hears_the_older_notices_read_live(app, live_server, login_as, librarian):
    book_id, _ = add_book(librarian)
    email = "tab@webpush-server.dev"
    session = login_as(email, server=live_server)
    reserved = session.post(
        f"{live_server}/api/library/books/{book_id}/holds",
        headers={"X-CSRFToken": session.headers.get("X-CSRFToken", "")},
    )
    assert reserved.status_code == 201, reserved.text
    hold_id = reserved.json()["id"]
    (available,) = rows(app, Notification)
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    socket = websocket.create_connection(
        live_server.replace("http://", "ws://") + "/ws", cookie=cookie, timeout=10
    )
    try:
        assert json.loads(socket.recv()) == {"type": "unread_count", "count": 1}
        assert librarian.post(f"/api/library/holds/{hold_id}/pickup").status_code == 201
        read, count = json.loads(socket.recv()), json.loads(socket.recv())
    finally:
        socket.close()
    assert read == {
        "type": "notifications_read",
        "tag": f"hold-{hold_id}",
        "ids": [available.id],
        "last_id": available.id,
    }
    assert count == {"type": "unread_count", "count": 0}


# -- pages -----------------------------------------------------------------------------------


def form(who: Api, url: str, **fields):
    return who.client.post(url, data={"csrf_token": who.csrf, **fields}, follow_redirects=True)


def test_patron_pages_renew_suspend_resume_and_say_what_happened(app, login_as, librarian):
    book_id, (copy_id,) = add_book(librarian, title="Kindred")
    reader = login_as("pages@webpush-server.dev")
    loan_id = lend(librarian, copy_id, reader.email)
    loans = reader.get("/library/loans").text
    assert 'class="stack"' in loans and 'data-label="Renewals">0 of 2<' in loans
    renewed = form(reader, f"/library/loans/{loan_id}/renew")
    assert "Renewed Kindred: now due" in renewed.text and "(renewal 1 of 2)" in renewed.text
    assert 'data-label="Renewals">1 of 2<' in renewed.text

    waiter = login_as("waiter@webpush-server.dev")
    hold_id = waiter.post(f"/api/library/books/{book_id}/holds").json["id"]
    refused = form(reader, f"/library/loans/{loan_id}/renew")
    assert "Someone is waiting for this book" in refused.text
    holds = waiter.get("/library/holds").text
    # Cancelling asks first: the only cancel button sits inside a <details> confirmation.
    assert "Yes, cancel the hold" in holds and holds.count('btn-danger" type="submit"') == 1
    assert 'data-label="Queue">1<' in holds
    day = today(app) + timedelta(days=4)
    until = day.isoformat()
    suspended = form(waiter, f"/library/holds/{hold_id}/suspend", suspended_until=until)
    # The flash says the day through the shared formatter (4 Dec 2026), as pages do.
    assert f"Suspended until {day.day} {day:%b %Y}" in suspended.text
    assert (
        f"Suspended until <strong>{day.day} {day:%b %Y}</strong>"
        in waiter.get(f"/library/holds/{hold_id}").text
    )
    bad = form(waiter, f"/library/holds/{hold_id}/not-needed", not_needed_after="2001-01-01")
    assert "Last day I still want it cannot be in the past." in bad.text
    resumed = form(waiter, f"/library/holds/{hold_id}/resume")
    assert "Resumed: the next free copy can be yours." in resumed.text
    assert rows(app, Hold)[0].suspended_until is None


def test_desk_cancels_with_a_note_and_renews(app, login_as, librarian):
    book_id, (copy_id,) = add_book(librarian, title="Beloved")
    reader = login_as("deskread@webpush-server.dev")
    loan_id = lend(librarian, copy_id, reader.email)
    patron = login_as("noted@webpush-server.dev")
    hold_id = patron.post(f"/api/library/books/{book_id}/holds").json["id"]
    desk = librarian.get("/library/desk").text
    assert 'id="desk-loans"' in desk and f'id="note-{hold_id}"' in desk
    refused = form(librarian, f"/library/loans/{loan_id}/renew", back="/library/desk")
    assert "Someone is waiting" in refused.text and "Librarian" in refused.text
    cancelled = form(
        librarian,
        f"/library/holds/{hold_id}/cancel",
        note="We are withdrawing this edition.",
        back="/library/desk",
    )
    assert f"Hold {hold_id} on Beloved cancelled; the patron has been told with your note." in (
        cancelled.text
    )
    (notice,) = rows(app, Notification, Notification.kind == "hold_cancelled")
    assert notice.body == "The library says: We are withdrawing this edition."
    renewed = form(librarian, f"/library/loans/{loan_id}/renew", back="/library/desk")
    assert "Renewed Beloved" in renewed.text and 'data-label="Renewals">1 of 2<' in renewed.text


def test_a_hold_change_names_both_bad_dates_at_once(app, login_as, librarian):
    book_id, (copy_id,) = add_book(librarian)
    lend(librarian, copy_id, login_as("out9@webpush-server.dev").email)
    patron = login_as("twodates@webpush-server.dev")
    hold_id = patron.post(f"/api/library/books/{book_id}/holds").json["id"]
    past = (today(app) - timedelta(days=2)).isoformat()
    body = {"suspended_until": today(app).isoformat(), "not_needed_after": past}
    answer = patch(patron, f"/api/library/holds/{hold_id}", body)
    assert answer.status_code == 400, answer.text
    error = answer.json["error"]
    assert error["field"] == "suspended_until"
    fields = [item["field"] for item in error["fields"]]
    assert fields == ["suspended_until", "not_needed_after"]
    hold = rows(app, Hold)[0]
    assert hold.suspended_until is None and hold.not_needed_after is None
