"""POST /api/v1/notifications and friends, through the app and the real worker and push service."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import add_device
from tests.helpers import count, rows
from tests.service_api import bearer, make_key, notify_body
from webpush_server.notifications.models import Delivery, Notification
from webpush_server.service_api.models import ApiRequest
from webpush_server.timeutil import utcnow


@pytest.fixture
def key(app):
    return make_key(app)[1]


def post(client, secret, body, **headers):
    return client.post("/api/v1/notifications", json=body, headers=bearer(secret, **headers))


def test_an_announcement_reaches_the_inbox_and_a_device_decrypts_it(
    app, client, key, make_user, login_as, push_service, run_worker
):
    reader = make_user("reader@webpush-server.dev")
    device = add_device(app, reader, push_service)
    response = post(
        client,
        key,
        notify_body(
            {"user_id": reader},
            {"email": "NOBODY@webpush-server.dev"},
            {"email": "Reader@webpush-server.dev"},
            topic="closing-early",
            urgency="high",
            ttl=600,
            data={"campaign": 7, "tags": ["a"]},
        ),
    )
    assert response.status_code == 202, response.text
    assert response.json == {
        "id": response.json["id"],
        "status": "queued",
        "recipients": 1,
        "skipped": [
            {"recipient": {"email": "NOBODY@webpush-server.dev"}, "reason": "unknown_user"},
            {"recipient": {"email": "Reader@webpush-server.dev"}, "reason": "duplicate"},
        ],
    }
    run_worker()
    (push,) = push_service.wait_for_count(1)
    assert push.endpoint == device.endpoint and push.status == 201
    assert push.urgency == "high" and push.topic == "closing-early" and 590 <= push.ttl <= 600
    message = push.notification
    assert message["title"] == "The library closes early today"
    assert message["url"] == "/library/" and message["kind"] == "announcement"
    assert message["data"] == {"campaign": 7, "tags": ["a"]}

    reader_api = login_as("reader@webpush-server.dev")
    inbox = reader_api.get("/api/notifications").json
    assert [n["title"] for n in inbox["notifications"]] == ["The library closes early today"]
    assert inbox["unread_count"] == 1

    status = client.get(f"/api/v1/notifications/{response.json['id']}", headers=bearer(key)).json
    assert status["status"] == "sent" and status["send_at"] is None
    (recipient,) = status["recipients"]
    assert recipient["user_id"] == reader and recipient["read_at"] is None
    assert recipient["clicked_at"] is None
    assert recipient["channels"]["push"] == {
        "pending": 0,
        "sent": 1,
        "failed": 0,
        "skipped": 0,
        "cancelled": 0,
    }
    # A click through /n/<id> shows in the status as read and clicked.
    opened = reader_api.get(f"/n/{recipient['notification_id']}")
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/library/")
    status = client.get(f"/api/v1/notifications/{response.json['id']}", headers=bearer(key)).json
    (recipient,) = status["recipients"]
    assert recipient["clicked_at"] is not None and recipient["read_at"] is not None


def test_a_site_key_sends_its_own_kinds_and_announcements_only(app, client, make_user):
    reader = make_user("reader@webpush-server.dev")
    _, library = make_key(app, "catalogue", "library")
    _, funding = make_key(app, "payments", "funding")
    _, everything = make_key(app, "ops", "all")
    to = {"user_id": reader}
    assert post(client, library, notify_body(to, kind="book_available")).status_code == 202
    assert post(client, library, notify_body(to, kind="announcement")).status_code == 202
    assert post(client, funding, notify_body(to, kind="coupon_expiring")).status_code == 202
    assert post(client, everything, notify_body(to, kind="hold_expired")).status_code == 202
    for secret, kind in ((library, "coupon_expiring"), (funding, "book_available")):
        refused = post(client, secret, notify_body(to, kind=kind))
        assert refused.status_code == 403 and refused.json["error"]["field"] == "kind"
    assert post(client, everything, notify_body(to, kind="test")).status_code == 403
    unknown = post(client, everything, notify_body(to, kind="nope"))
    assert unknown.status_code == 400 and unknown.json["error"]["field"] == "kind"
    assert count(app, ApiRequest) == 4 and count(app, Notification) == 4


def _bad_inputs(reader: int) -> list[tuple[str, dict]]:
    later = (utcnow() + timedelta(hours=1)).isoformat()
    to = [{"user_id": reader}]
    return [
        ("kind", {"kind": ""}),
        ("recipients", {"recipients": []}),
        ("recipients", {"recipients": [{"user_id": reader}] * 1001}),
        ("recipients.0", {"recipients": [{"user_id": reader, "email": "a@b.cd"}]}),
        ("recipients.0", {"recipients": [{}]}),
        ("recipients.0.user_id", {"recipients": [{"user_id": "1"}]}),
        ("recipients.0.user_id", {"recipients": [{"user_id": True}]}),
        ("recipients.0.user_id", {"recipients": [{"user_id": 0}]}),
        # Beyond an INTEGER column: PostgreSQL refused to compare it (a 500) before the bound.
        ("recipients.0.user_id", {"recipients": [{"user_id": 2**31}]}),
        ("recipients.0.nickname", {"recipients": [{"nickname": "x"}]}),
        ("title", {"title": ""}),
        ("title", {"title": "   "}),
        ("title", {"title": "x" * 201}),
        ("title", {"title": None}),
        ("body", {"body": "x" * 2001}),
        ("url", {"url": "https://evil.example/"}),
        ("url", {"url": "//evil.example/"}),
        ("url", {"url": "/\\evil.example"}),
        ("url", {"url": "/a\r\nSet-Cookie: x"}),
        ("topic", {"topic": "x" * 33}),
        ("topic", {"topic": "has space"}),
        ("urgency", {"urgency": "urgent"}),
        ("ttl", {"ttl": 0}),
        ("ttl", {"ttl": "60"}),
        ("ttl", {"ttl": 31 * 86400}),
        ("ttl", {"ttl": 60, "expires_at": later}),
        ("send_at", {"send_at": "2030-01-01T00:00:00"}),
        ("send_at", {"send_at": 1900000000}),
        ("send_at", {"send_at": "tomorrow"}),
        ("send_at", {"send_at": (utcnow() + timedelta(days=31)).isoformat()}),
        ("expires_at", {"expires_at": (utcnow() - timedelta(minutes=1)).isoformat()}),
        ("expires_at", {"send_at": later, "expires_at": later}),
        ("channels.0", {"channels": ["pigeon"]}),
        ("channels", {"channels": ["push", "push"]}),
        ("channels", {"channels": "push"}),
        ("cancellation_key", {"cancellation_key": ""}),
        ("cancellation_key", {"cancellation_key": "x" * 201}),
        ("data", {"data": [1, 2]}),
        ("data", {"data": {"blob": "x" * 2100}}),
        ("colour", {"colour": "red"}),
        ("kind", {"recipients": to, "kind": None}),
    ]


def test_bad_input_on_every_field_is_400_naming_it_and_records_nothing(app, client, key, make_user):
    reader = make_user("reader@webpush-server.dev")
    for field, change in _bad_inputs(reader):
        response = post(client, key, notify_body({"user_id": reader}) | change)
        assert response.status_code == 400, (field, change, response.text)
        error = response.json["error"]
        assert error["field"] == field, (change, error)
        assert error["code"] == "invalid" and error["message"]
    for raw in (b"", b"[]", b"not json", b'"text"'):
        response = client.post(
            "/api/v1/notifications",
            data=raw,
            headers=bearer(key, **{"Content-Type": "application/json"}),
        )
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid"
    long_key = post(client, key, notify_body({"user_id": reader}), **{"Idempotency-Key": "k" * 256})
    assert long_key.status_code == 400
    assert long_key.json["error"]["field"] == "Idempotency-Key"
    assert count(app, ApiRequest) == 0 and count(app, Notification) == 0


def test_every_invalid_field_is_named_at_once_the_first_in_field(app, client, key, make_user):
    reader = make_user("reader@webpush-server.dev")
    bad = {"title": 5, "url": "https://elsewhere.example/", "ttl": -1, "colour": "red"}
    response = post(client, key, notify_body({"user_id": reader}) | bad)
    assert response.status_code == 400, response.text
    error = response.json["error"]
    named = [fault["field"] for fault in error["fields"]]
    assert sorted(named) == ["colour", "title", "ttl", "url"]
    assert error["field"] == named[0] and error["message"] == error["fields"][0]["message"]
    assert all(fault["message"].startswith(f"{fault['field']}: ") for fault in error["fields"])
    assert count(app, ApiRequest) == 0 and count(app, Notification) == 0
    # One bad field: the list holds just it.
    one = post(client, key, notify_body({"user_id": reader}) | {"ttl": -1}).json["error"]
    assert one["field"] == "ttl" and [f["field"] for f in one["fields"]] == ["ttl"]


def test_email_and_sms_channels_are_reported_unavailable_and_push_only_when_asked(
    app, client, key, make_user, push_service
):
    reader = make_user("reader@webpush-server.dev")
    add_device(app, reader, push_service)
    response = post(client, key, notify_body({"user_id": reader}, channels=["email", "sms"]))
    assert response.status_code == 202
    assert response.json["recipients"] == 1
    assert response.json["skipped"] == [
        {"recipient": {"user_id": reader}, "reason": "channel_unavailable", "channel": "email"},
        {"recipient": {"user_id": reader}, "reason": "channel_unavailable", "channel": "sms"},
    ]
    # The inbox always gets it; no push was asked for, so no delivery exists.
    assert count(app, Notification) == 1 and count(app, Delivery) == 0


def test_the_same_idempotency_key_replays_the_first_answer_or_refuses_another_body(
    app, client, key, make_user, push_service
):
    reader = make_user("reader@webpush-server.dev")
    add_device(app, reader, push_service)
    body = notify_body({"user_id": reader})
    first = post(client, key, body, **{"Idempotency-Key": "order-1234"})
    assert first.status_code == 202
    # The same body, keys in another order: the same answer, nothing new recorded.
    again = post(client, key, dict(reversed(body.items())), **{"Idempotency-Key": "order-1234"})
    assert again.status_code == 202 and again.json == first.json
    assert count(app, ApiRequest) == 1 and count(app, Notification) == 1
    assert count(app, Delivery) == 1

    other = post(client, key, body | {"title": "Changed"}, **{"Idempotency-Key": "order-1234"})
    assert other.status_code == 422
    assert other.json["error"]["code"] == "idempotency_conflict"
    assert count(app, Notification) == 1

    # Another key may use the same idempotency key for its own request.
    _, second_key = make_key(app, "payments")
    theirs = post(client, second_key, body, **{"Idempotency-Key": "order-1234"})
    assert theirs.status_code == 202 and theirs.json["id"] != first.json["id"]
    # Without the header every request is new.
    assert post(client, key, body).json["id"] not in (first.json["id"], theirs.json["id"])


def test_an_idempotency_key_is_kept_for_24_hours(app, client, key, make_user):
    from sqlalchemy import update

    from webpush_server.extensions import db

    reader = make_user("reader@webpush-server.dev")
    body = notify_body({"user_id": reader})
    first = post(client, key, body, **{"Idempotency-Key": "daily"}).json
    with app.app_context():
        db.session.execute(
            update(ApiRequest).values(created_at=utcnow() - timedelta(hours=24, minutes=1))
        )
        db.session.commit()
    later = post(client, key, body | {"title": "Next day"}, **{"Idempotency-Key": "daily"})
    assert later.status_code == 202 and later.json["id"] != first["id"]


def test_status_and_cancel_belong_to_the_key_that_sent(app, client, key, make_user):
    reader = make_user("reader@webpush-server.dev")
    sent = post(client, key, notify_body({"user_id": reader})).json
    _, other = make_key(app, "someone else")
    for method in (client.get, client.delete):
        response = method(f"/api/v1/notifications/{sent['id']}", headers=bearer(other))
        assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert client.get("/api/v1/notifications/999", headers=bearer(key)).status_code == 404
    cancel = client.post(
        "/api/v1/notifications/cancel", json={"cancellation_key": ""}, headers=bearer(other)
    )
    assert cancel.status_code == 400 and cancel.json["error"]["field"] == "cancellation_key"


def test_cancel_withdraws_pending_deliveries_by_id_or_by_cancellation_key(
    app, client, key, make_user, push_service, run_worker
):
    reader = make_user("reader@webpush-server.dev")
    device = add_device(app, reader, push_service)
    one = post(client, key, notify_body({"user_id": reader}, cancellation_key="promo-7")).json
    two = post(client, key, notify_body({"user_id": reader}, cancellation_key="promo-7")).json
    assert one["id"] != two["id"]
    three = post(client, key, notify_body({"user_id": reader})).json
    # Nothing has gone out yet (no worker ran): every delivery is pending.
    by_id = client.delete(f"/api/v1/notifications/{three['id']}", headers=bearer(key))
    assert by_id.status_code == 200 and by_id.json == {"cancelled": 1}
    by_key = client.post(
        "/api/v1/notifications/cancel", json={"cancellation_key": "promo-7"}, headers=bearer(key)
    )
    assert by_key.json == {"cancelled": 2}
    run_worker()
    assert push_service.pushes_for(device.endpoint) == []
    assert {d.status for d in rows(app, Delivery)} == {"cancelled"}
    status = client.get(f"/api/v1/notifications/{one['id']}", headers=bearer(key)).json
    assert status["status"] == "cancelled"
    assert status["recipients"][0]["channels"]["push"]["cancelled"] == 1
    # Queued ones stay in the inbox (they may have been seen); a second cancel finds nothing.
    assert count(app, Notification, Notification.visible_at.is_not(None)) == 3
    again = client.post(
        "/api/v1/notifications/cancel", json={"cancellation_key": "promo-7"}, headers=bearer(key)
    )
    assert again.json == {"cancelled": 0}


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(make_app, make_user):
    app = make_app(SERVICE_API_RATE_LIMIT=3, SERVICE_API_RATE_WINDOW_SECONDS=3600)
    client = app.test_client()
    _, key = make_key(app)
    _, other = make_key(app, "other")
    for _ in range(3):
        assert client.get("/api/v1/notifications/1", headers=bearer(key)).status_code == 404
    limited = client.post("/api/v1/notifications", json=notify_body(), headers=bearer(key))
    assert limited.status_code == 429
    assert limited.json["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600
    # Per key: another key is not held back.
    assert client.get("/api/v1/notifications/1", headers=bearer(other)).status_code == 404
    assert count(app, ApiRequest) == 0
