"""The check-in's statement budget: on PostgreSQL each statement is a round trip (~0.4 ms
here), and the check-in is on the event-to-device latency path (bench/latency.py)."""

from __future__ import annotations

from sqlalchemy import event

from tests.factories import add_book, subscribe
from webpush_server.extensions import db

LIBRARIAN = "desk@statements.webpush-server.dev"
PATRON = "reader@statements.webpush-server.dev"


def test_a_check_in_that_readies_a_hold_takes_at_most_16_statements(app, login_as, push_service):
    desk = login_as(LIBRARIAN, "librarian")
    reader = login_as(PATRON)
    subscribe(reader, push_service)
    book_id, (copy_id,) = add_book(desk)
    lent = desk.post("/api/library/loans", json={"copy_id": copy_id, "user_email": LIBRARIAN})
    assert lent.status_code == 201, lent.text
    hold_id = reader.post(f"/api/library/books/{book_id}/holds").json["id"]
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        answer = desk.post(f"/api/library/copies/{copy_id}/return")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert answer.status_code == 200, answer.text
    assert answer.json["hold_id"] == hold_id
    # The session's user, the lock, the loan, the audit row, the tag, the copy, the queue
    # (free copies, waiting holds, the two updates, those behind), the notice's hold and
    # book, the routing (preferences, devices) and the two inserts: 16. It was 21.
    assert len(statements) <= 16, "\n".join(statements)
    # Nothing the ORM had expired is read back one row at a time.
    assert not [s for s in statements if s.startswith("SELECT book.id")], statements
    inbox = reader.get("/api/notifications").json["notifications"]
    assert [n["kind"] for n in inbox] == ["book_available"]
    assert f"/library/holds/{hold_id}" in inbox[0]["url"]
