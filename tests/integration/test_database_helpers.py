"""insert_rows and one_of on the database under test: awkward values survive the trip."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from webpush_server.auth.models import User
from webpush_server.database import insert_rows, one_of
from webpush_server.extensions import db
from webpush_server.notifications.models import Notification
from webpush_server.timeutil import utcnow

# Characters an array literal or a VALUES list must escape: PostgreSQL gets the batch as arrays.
AWKWARD = ['quote " and \\ backslash', "{braces}, commas", "NULL", "", "한국어 ✓", "'single'"]


def test_insert_rows_keeps_every_value_and_skips_conflicts(app, make_user):
    user_id = make_user("rows@example.com")
    now = utcnow()
    with app.app_context():
        rows = [
            {
                "user_id": user_id,
                "kind": "test",
                "title": title,
                "body": title * 2,
                "url": "/",
                "tag": f"t{i}",
                "topic": None,
                "expires_at": now + timedelta(hours=i),
                "dedupe_key": f"rows:{i}",
                "visible_at": now,
                "created_at": now,
                "data": {"text": title, "list": [i, None, {"nested": title}]} if i % 2 else None,
            }
            for i, title in enumerate(AWKWARD)
        ]
        inserted = insert_rows(
            Notification.__table__,
            rows,
            returning=("id", "dedupe_key"),
            skip_conflicts_on=("dedupe_key",),
        )
        assert sorted(key for _, key in inserted) == sorted(row["dedupe_key"] for row in rows)
        # The same keys again, plus one new: only the new one is inserted.
        again = insert_rows(
            Notification.__table__,
            [*rows[:2], {**rows[0], "dedupe_key": "rows:new"}],
            returning=("dedupe_key",),
            skip_conflicts_on=("dedupe_key",),
        )
        db.session.commit()
        assert again == [("rows:new",)]
        stored = {
            n.dedupe_key: n
            for n in db.session.scalars(select(Notification).where(Notification.user_id == user_id))
        }
        for row in rows:
            got = stored[row["dedupe_key"]]
            assert (got.title, got.body, got.tag, got.topic, got.data) == (
                row["title"],
                row["body"],
                row["tag"],
                None,
                row["data"],
            )
            assert got.expires_at == row["expires_at"]
            # A column left out gets its scalar Python default, as the ORM would give it.
            assert got.urgency == "normal"


def test_one_of_matches_exactly_the_listed_values(app, make_user):
    users = [make_user(f"one-of-{i}@example.com") for i in range(3)]
    with app.app_context():
        by_id = select(User.id).where(one_of(User.id, "ids"))
        by_email = select(User.email).where(one_of(User.email, "emails"))
        wanted = [users[0], users[2]]
        assert sorted(db.session.scalars(by_id, {"ids": wanted})) == wanted
        assert list(db.session.scalars(by_id, {"ids": [10**9]})) == []
        assert list(db.session.scalars(by_id, {"ids": []})) == []
        emails = ["one-of-1@example.com", "nobody'@example.com", 'x"{y}@example.com']
        assert list(db.session.scalars(by_email, {"emails": emails})) == [emails[0]]


def test_one_of_is_a_plain_in_on_sqlite_and_one_array_on_postgresql():
    statement = select(User.id).where(one_of(User.id, "ids"))
    # Not "IN (…) = 1", SQLite's form for a boolean column, which no index serves.
    assert str(statement.compile(dialect=sqlite.dialect())).endswith(
        "WHERE user_account.id IN (__[POSTCOMPILE_ids])"
    )
    assert str(statement.compile(dialect=postgresql.dialect())).endswith(
        "WHERE user_account.id = ANY (%(ids)s::INTEGER[])"
    )
