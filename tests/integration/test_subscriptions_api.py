"""The subscription REST API: upsert, validation naming the field, limits, SSRF at subscribe."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from webpush_server.extensions import db
from webpush_server.push.models import Subscription


def count_subscriptions(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Subscription))


def test_subscribe_creates_then_updates_by_endpoint(patron_api, push_service, app):
    device = push_service.new_subscription()
    first = patron_api.post(
        "/api/push/subscriptions", json=device.as_json(), headers={"User-Agent": "Firefox/140"}
    )
    assert first.status_code == 201
    again = patron_api.post("/api/push/subscriptions", json=device.as_json())
    assert again.status_code == 200
    assert again.json["id"] == first.json["id"]
    listed = patron_api.get("/api/push/subscriptions").json["subscriptions"]
    assert [s["endpoint"] for s in listed] == [device.endpoint]
    assert set(listed[0]) == {
        "id",
        "endpoint",
        "user_agent",
        "created_at",
        "last_success_at",
        "last_failure_at",
    }
    assert listed[0]["last_success_at"] is None


def test_subscribe_needs_login_and_csrf(api, make_user, push_service, app):
    device = push_service.new_subscription()
    logged_out = api.client.post("/api/push/subscriptions", json=device.as_json())
    assert logged_out.status_code == 401
    assert logged_out.json["error"]["code"] == "unauthorized"
    make_user("csrf@webpush-server.dev")
    api.login("csrf@webpush-server.dev")
    no_token = api.client.post("/api/push/subscriptions", json=device.as_json())
    assert no_token.status_code == 400
    assert no_token.json["error"]["field"] == "csrf_token"
    assert count_subscriptions(app) == 0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


NOT_ON_CURVE = _b64(b"\x04" + b"\x01" * 64)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.pop("endpoint"), "endpoint"),
        (lambda b: b.update(endpoint=42), "endpoint"),
        (lambda b: b.update(endpoint="ftp://push.example/x"), "endpoint"),
        (lambda b: b.update(endpoint=b["endpoint"] + "#frag"), "endpoint"),
        (lambda b: b.update(endpoint=b["endpoint"] + " HTTP/1.1\r\nX: y"), "endpoint"),
        (lambda b: b.update(endpoint=b["endpoint"] + "x" * 2100), "endpoint"),
        (lambda b: b.update(endpoint="https://attacker.example.org/push/1"), "endpoint"),
        (lambda b: b.update(endpoint="https://169.254.169.254/latest/meta-data"), "endpoint"),
        (lambda b: b.update(endpoint="https://localhost/push"), "endpoint"),
        (lambda b: b.update(endpoint="https://user:pw@fcm.googleapis.com/fcm/send/x"), "endpoint"),
        (lambda b: b.pop("keys"), "keys"),
        (lambda b: b["keys"].pop("p256dh"), "keys.p256dh"),
        (lambda b: b["keys"].update(p256dh="not base64!"), "keys.p256dh"),
        (lambda b: b["keys"].update(p256dh=_b64(b"\x04" + b"\x01" * 10)), "keys.p256dh"),
        (lambda b: b["keys"].update(p256dh=NOT_ON_CURVE), "keys.p256dh"),
        (lambda b: b["keys"].update(p256dh="A" * 5000), "keys.p256dh"),
        (lambda b: b["keys"].update(auth=_b64(b"x" * 15)), "keys.auth"),
        (lambda b: b["keys"].update(auth=None), "keys.auth"),
        (lambda b: b.update(expirationTime="tomorrow"), "expirationTime"),
        (lambda b: b.update(expirationTime=True), "expirationTime"),
        (lambda b: b.update(oldEndpoint=["x"]), "oldEndpoint"),
    ],
)
def test_invalid_subscription_names_the_field_and_writes_nothing(
    patron_api, push_service, app, change, field
):
    body = push_service.new_subscription().as_json()
    change(body)
    response = patron_api.post("/api/push/subscriptions", json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["field"] == field
    assert response.json["error"]["message"]
    assert count_subscriptions(app) == 0


def test_non_json_body_is_refused(patron_api, app):
    response = patron_api.client.post(
        "/api/push/subscriptions",
        data="endpoint=x",
        headers={"X-CSRFToken": patron_api.csrf, "Content-Type": "text/plain"},
    )
    assert response.status_code == 400
    assert "error" in response.json


def test_old_endpoint_is_replaced(patron_api, push_service, app):
    old, new = push_service.new_subscription(), push_service.new_subscription()
    patron_api.post("/api/push/subscriptions", json=old.as_json())
    response = patron_api.post(
        "/api/push/subscriptions", json=new.as_json(oldEndpoint=old.endpoint)
    )
    assert response.status_code == 201
    listed = patron_api.get("/api/push/subscriptions").json["subscriptions"]
    assert [s["endpoint"] for s in listed] == [new.endpoint]


def test_endpoint_moves_to_whoever_subscribes_it(client, login_as, push_service):
    device = push_service.new_subscription()
    first = login_as("first@webpush-server.dev")
    first.post("/api/push/subscriptions", json=device.as_json())
    second = login_as("second@webpush-server.dev")
    assert second.post("/api/push/subscriptions", json=device.as_json()).status_code == 200
    assert first.get("/api/push/subscriptions").json["subscriptions"] == []
    assert len(second.get("/api/push/subscriptions").json["subscriptions"]) == 1


def test_at_most_twenty_devices(patron_api, push_service, app):
    for _ in range(20):
        response = patron_api.post(
            "/api/push/subscriptions", json=push_service.new_subscription().as_json()
        )
        assert response.status_code == 201
    over = patron_api.post(
        "/api/push/subscriptions", json=push_service.new_subscription().as_json()
    )
    assert over.status_code == 409
    assert over.json["error"] == {
        "code": "too_many_devices",
        "field": "endpoint",
        "message": over.json["error"]["message"],
    }
    assert count_subscriptions(app) == 20


def test_delete_is_idempotent_and_only_touches_own_devices(patron_api, login_as, push_service, app):
    mine = push_service.new_subscription()
    patron_api.post("/api/push/subscriptions", json=mine.as_json())
    other = login_as("other@webpush-server.dev")
    assert (
        other.delete("/api/push/subscriptions", json={"endpoint": mine.endpoint}).status_code == 204
    )
    assert count_subscriptions(app) == 1
    assert (
        patron_api.delete("/api/push/subscriptions", json={"endpoint": mine.endpoint}).status_code
        == 204
    )
    assert (
        patron_api.delete("/api/push/subscriptions", json={"endpoint": mine.endpoint}).status_code
        == 204
    )
    assert count_subscriptions(app) == 0
    missing = patron_api.delete("/api/push/subscriptions", json={})
    assert missing.status_code == 400
    assert missing.json["error"]["field"] == "endpoint"


def test_vapid_public_key_is_the_uncompressed_point(client, vapid_public):
    response = client.get("/api/push/vapid-public-key")
    assert response.status_code == 200
    key = response.json["publicKey"]
    assert key == vapid_public
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 65 and raw[0] == 4


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        # Each is the local push service's endpoint, allowed but for the one fault shown.
        ("{origin}/push/中文", "must be ASCII"),
        ("http://127.0.0.1.:{port}/push/x", "empty label"),
        ("{origin}/push/a\\b", "backslashes"),
        ("{origin}/push/a%00b", "%00"),
        ("http://127.0.0.1:0{port}/push/x", "leading zeros"),
        ("http://127.0.0.1:/push/x", "leading zeros"),
        ("https://fcm..googleapis.com/fcm/send/x", "empty label"),
        ("https://bücher.push.services.mozilla.com/x", "must be ASCII"),
    ],
)
def test_endpoints_not_in_canonical_form_are_refused_naming_the_field(
    patron_api, push_service, app, endpoint, reason
):
    body = push_service.new_subscription().as_json()
    port = push_service.host_port.rsplit(":", 1)[1]
    body["endpoint"] = endpoint.format(origin=push_service.origin, port=port)
    response = patron_api.post("/api/push/subscriptions", json=body)
    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert (error["field"], error["code"]) == ("endpoint", "endpoint_not_allowed")
    assert reason in error["message"]
    assert count_subscriptions(app) == 0


def test_an_explicit_default_port_is_stored_without_it(make_app, make_user, push_service):
    from tests.helpers import Api

    app = make_app(PUSH_SERVICE_HOSTS=f"fcm.googleapis.com,{push_service.host_port}")
    make_user("port@webpush-server.dev")
    api = Api(app.test_client())
    api.login("port@webpush-server.dev")
    body = push_service.new_subscription().as_json()
    body["endpoint"] = "https://fcm.googleapis.com:443/fcm/send/abc"
    created = api.post("/api/push/subscriptions", json=body)
    assert created.status_code == 201
    listed = api.get("/api/push/subscriptions").json["subscriptions"]
    assert [s["endpoint"] for s in listed] == ["https://fcm.googleapis.com/fcm/send/abc"]
    # Both spellings are the same device.
    body["endpoint"] = "https://fcm.googleapis.com/fcm/send/abc"
    again = api.post("/api/push/subscriptions", json=body)
    assert (again.status_code, again.json["id"]) == (200, created.json["id"])
    gone = api.delete(
        "/api/push/subscriptions", json={"endpoint": "https://fcm.googleapis.com:443/fcm/send/abc"}
    )
    assert gone.status_code == 204
    assert api.get("/api/push/subscriptions").json["subscriptions"] == []
