"""Receipts from the service worker (same origin, no CSRF token) and the /n/<id> link."""

from __future__ import annotations

from tests.factories import record_notification
from tests.helpers import rows
from webpush_server.notifications.models import Notification

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


def receipt(session, notification_id: int, event, headers=SAME_ORIGIN):
    # The service worker sends no X-CSRFToken: post with the bare client.
    return session.client.post(
        f"/api/notifications/{notification_id}/receipt", json={"event": event}, headers=headers
    )


def notification(app, notification_id: int) -> Notification:
    (row,) = rows(app, Notification, Notification.id == notification_id)
    return row


def test_receipts_are_stored_once_each_without_a_csrf_token(app, login_as):
    reader = login_as("reader@ops.dev")
    user_id = notification_owner(app, reader)
    nid = record_notification(app, user_id)
    assert receipt(reader, nid, "shown").status_code == 204
    first_shown = notification(app, nid).shown_at
    assert first_shown is not None
    assert receipt(reader, nid, "shown").status_code == 204
    assert notification(app, nid).shown_at == first_shown  # the first one counts
    assert receipt(reader, nid, "closed").status_code == 204
    row = notification(app, nid)
    assert row.closed_at is not None and row.clicked_at is None and row.read_at is None
    assert receipt(reader, nid, "clicked").status_code == 204
    assert notification(app, nid).clicked_at is not None


def test_receipts_from_another_origin_or_without_origin_are_refused(app, login_as):
    reader = login_as("reader@ops.dev")
    nid = record_notification(app, notification_owner(app, reader))
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {},
    ):
        answer = receipt(reader, nid, "clicked", headers=headers)
        assert answer.status_code == 403, headers
        assert answer.json["error"]["code"] == "forbidden_origin"
    # No Sec-Fetch-Site (older browsers) but our own Origin is fine.
    assert (
        receipt(reader, nid, "clicked", headers={"Origin": "http://localhost"}).status_code == 204
    )
    assert notification(app, nid).clicked_at is not None


def test_receipts_for_someone_elses_notification_are_404_and_bad_events_400(app, login_as):
    owner = login_as("owner@ops.dev")
    other = login_as("other@ops.dev")
    nid = record_notification(app, notification_owner(app, owner))
    assert receipt(other, nid, "shown").status_code == 404
    assert notification(app, nid).shown_at is None
    bad = receipt(owner, nid, "opened")
    assert bad.status_code == 400 and bad.json["error"]["field"] == "event"
    anonymous = app.test_client().post(
        f"/api/notifications/{nid}/receipt", json={"event": "shown"}, headers=SAME_ORIGIN
    )
    assert anonymous.status_code == 401


def test_the_link_marks_read_and_clicked_then_redirects_for_the_owner_only(app, login_as):
    owner = login_as("owner@ops.dev")
    other = login_as("other@ops.dev")
    nid = record_notification(app, notification_owner(app, owner))
    assert other.get(f"/n/{nid}").status_code == 404
    assert notification(app, nid).clicked_at is None
    answer = owner.get(f"/n/{nid}")
    assert answer.status_code == 302 and answer.headers["Location"] == "/notifications"
    row = notification(app, nid)
    assert row.read_at is not None and row.clicked_at is not None
    anonymous = app.test_client().get(f"/n/{nid}")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def notification_owner(app, session) -> int:
    """The user id of a logged-in Api session."""
    from webpush_server.auth.services import find_user

    with app.app_context():
        return find_user(session.email).id
