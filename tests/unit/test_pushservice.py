"""Self-tests of the local push service, with pywebpush and http_ece as the sending side."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import http_ece
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from tests.pushservice import PushService, Reply, TestSubscription, b64url_decode, b64url_encode

SUB = "mailto:ops@webpush.test"


@pytest.fixture
def service() -> Iterator[PushService]:
    with PushService() as svc:
        yield svc


@pytest.fixture
def vapid() -> Vapid:
    key = Vapid()
    key.generate_keys()
    return key


def public_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The base64url uncompressed public point, as VAPID's k carries it."""
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(raw)


def vapid_header(
    key: ec.EllipticCurvePrivateKey,
    claims: dict[str, Any],
    *,
    alg: str = "ES256",
    k: str | None = None,
    tamper: bool = False,
) -> str:
    """Build an RFC 8292 Authorization header by hand, so tests can break any part of it."""
    header = b64url_encode(json.dumps({"typ": "JWT", "alg": alg}).encode())
    payload = b64url_encode(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if tamper:
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    return f"vapid t={header}.{payload}.{b64url_encode(signature)}, k={k or public_b64(key)}"


def encrypt(sub: TestSubscription, plaintext: bytes) -> bytes:
    """Encrypt like a sender would (RFC 8291, aes128gcm)."""
    return http_ece.encrypt(
        plaintext,
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=b64url_decode(sub.p256dh),
        auth_secret=sub.auth_secret,
        version="aes128gcm",
    )


def good_claims(service: PushService, **changes: Any) -> dict[str, Any]:
    """Valid claims for this service, with overrides."""
    return {"aud": service.origin, "exp": int(time.time()) + 3600, "sub": SUB, **changes}


def post(endpoint: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    """POST raw bytes, closing the session so no socket outlives the test."""
    with requests.Session() as session:
        return session.post(endpoint, data=body, headers=headers, timeout=10)


def test_pywebpush_push_is_accepted_and_decrypts(service: PushService, vapid: Vapid) -> None:
    sub = service.new_subscription()
    data = json.dumps({"title": "Hold ready", "id": 7}).encode()

    response = webpush(
        sub.as_json(),
        data,
        vapid_private_key=vapid,
        vapid_claims={"sub": SUB},
        ttl=60,
        headers={"Urgency": "high", "Topic": "hold-7"},
    )

    assert response.status_code == 201
    assert response.headers["Location"].startswith(service.origin)
    [push] = service.pushes_for(sub.endpoint)
    assert push.status == 201 and push.error is None
    assert push.plaintext == data
    assert push.json == {"title": "Hold ready", "id": 7}
    assert (push.ttl, push.urgency, push.topic) == (60, "high", "hold-7")
    assert push.content_encoding == "aes128gcm"
    assert push.jwt_claims is not None and push.jwt_claims["aud"] == service.origin
    assert push.vapid_key == public_b64(vapid.private_key)


def test_a_declarative_message_decrypts_and_reads_as_flat_fields(
    service: PushService, vapid: Vapid
) -> None:
    sub = service.new_subscription()
    message = {
        "web_push": 8030,
        "notification": {
            "title": "Hold ready",
            "body": "Dune, by Friday ☕",
            "navigate": "https://notify.webpush-server.dev/n/7",
            "tag": "hold-3",
            "mutable": True,
            "data": {"id": 7, "kind": "book_available", "url": "/library/holds/3"},
        },
        "app_badge": 2,
    }
    data = json.dumps(message, ensure_ascii=False).encode()
    response = webpush(
        sub.as_json(), data, vapid_private_key=vapid, vapid_claims={"sub": SUB}, ttl=60
    )
    assert response.status_code == 201
    [push] = service.pushes_for(sub.endpoint)
    assert push.error is None and push.json == message
    assert push.notification == {
        "id": 7,
        "kind": "book_available",
        "url": "/library/holds/3",
        "title": "Hold ready",
        "body": "Dune, by Friday ☕",
        "navigate": "https://notify.webpush-server.dev/n/7",
        "tag": "hold-3",
        "mutable": True,
        "app_badge": 2,
    }
    # A payload of another shape is not mistaken for one.
    assert (
        webpush(
            sub.as_json(), b'{"id": 8}', vapid_private_key=vapid, vapid_claims={"sub": SUB}, ttl=60
        ).status_code
        == 201
    )
    with pytest.raises(AssertionError, match="not a declarative message"):
        _ = service.pushes_for(sub.endpoint)[1].notification


def test_subscription_json_shape(service: PushService) -> None:
    sub = service.new_subscription()

    data = sub.as_json(userAgent="test")

    assert data == {
        "endpoint": sub.endpoint,
        "expirationTime": None,
        "keys": {"p256dh": sub.p256dh, "auth": sub.auth},
        "userAgent": "test",
    }
    assert sub.endpoint.startswith(f"{service.origin}/push/")
    assert len(b64url_decode(sub.p256dh)) == 65 and len(sub.auth_secret) == 16
    assert service.host_port == service.origin.removeprefix("http://")


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("bad signature", 401, "signature"),
        ("wrong aud", 401, "aud"),
        ("aud with trailing slash", 401, "aud"),
        ("expired", 401, "expired"),
        ("exp beyond 24 h", 401, "24 h"),
        ("localhost sub", 401, "sub"),
        ("alg none", 401, "alg"),
        ("k of another key", 401, "signature"),
        ("no authorization", 401, "Authorization"),
        ("legacy webpush scheme", 401, "scheme"),
        ("missing TTL", 400, "TTL"),
        ("negative TTL", 400, "TTL"),
        ("aesgcm encoding", 415, "Content-Encoding"),
        ("no content-encoding", 400, "Content-Encoding"),
        ("bad urgency", 400, "Urgency"),
        ("long topic", 400, "Topic"),
        ("topic with bad characters", 400, "Topic"),
        ("too large", 413, "exceeds"),
        ("encrypted for another key", 400, "decryption"),
    ],
)
def test_invalid_pushes_are_refused_and_recorded(
    service: PushService, case: str, status: int, reason: str
) -> None:
    sub = service.new_subscription()
    key = ec.generate_private_key(ec.SECP256R1())
    body = encrypt(sub, b"payload")
    claims = good_claims(service)
    headers = {"TTL": "60", "Content-Encoding": "aes128gcm"}
    auth_args: dict[str, Any] = {}
    match case:
        case "bad signature":
            auth_args["tamper"] = True
        case "wrong aud":
            claims["aud"] = "https://updates.push.services.mozilla.com"
        case "aud with trailing slash":
            claims["aud"] = service.origin + "/"
        case "expired":
            claims["exp"] = int(time.time()) - 10
        case "exp beyond 24 h":
            claims["exp"] = int(time.time()) + 25 * 3600
        case "localhost sub":
            claims["sub"] = "localhost"
        case "alg none":
            auth_args["alg"] = "none"
        case "k of another key":
            auth_args["k"] = public_b64(ec.generate_private_key(ec.SECP256R1()))
        case "missing TTL":
            del headers["TTL"]
        case "negative TTL":
            headers["TTL"] = "-1"
        case "aesgcm encoding":
            headers["Content-Encoding"] = "aesgcm"
        case "no content-encoding":
            del headers["Content-Encoding"]
        case "bad urgency":
            headers["Urgency"] = "urgent"
        case "long topic":
            headers["Topic"] = "t" * 33
        case "topic with bad characters":
            headers["Topic"] = "hold:7"
        case "too large":
            body = encrypt(sub, b"x" * 4000)
        case "encrypted for another key":
            body = encrypt(service.new_subscription(), b"payload")
    headers["Authorization"] = vapid_header(key, claims, **auth_args)
    if case == "no authorization":
        del headers["Authorization"]
    if case == "legacy webpush scheme":
        headers["Authorization"] = "WebPush " + headers["Authorization"].split("t=")[1]

    response = post(sub.endpoint, body, headers)

    assert response.status_code == status, response.text
    [push] = service.pushes_for(sub.endpoint)
    assert push.status == status
    assert push.error is not None and reason in push.error
    assert push.plaintext is None


def test_unknown_endpoint_is_404(service: PushService, vapid: Vapid) -> None:
    sub = service.new_subscription()
    service.forget(sub.endpoint)

    with pytest.raises(WebPushException) as raised:
        webpush(sub.as_json(), b"x", vapid_private_key=vapid, vapid_claims={"sub": SUB}, ttl=5)

    assert raised.value.response is not None and raised.value.response.status_code == 404
    assert service.received[0].error is not None


def test_expected_vapid_key_refuses_other_keys_with_403(vapid: Vapid) -> None:
    expected = ec.generate_private_key(ec.SECP256R1())
    with PushService(expected_vapid_key=public_b64(expected)) as service:
        sub = service.new_subscription()

        with pytest.raises(WebPushException) as raised:
            webpush(sub.as_json(), b"x", vapid_private_key=vapid, vapid_claims={"sub": SUB}, ttl=5)
        response = post(
            sub.endpoint,
            encrypt(sub, b"ok"),
            {
                "TTL": "0",
                "Content-Encoding": "aes128gcm",
                "Authorization": vapid_header(expected, good_claims(service)),
            },
        )

        assert raised.value.response is not None and raised.value.response.status_code == 403
        assert response.status_code == 201
        assert [p.status for p in service.received] == [403, 201]


def test_scripted_replies_are_returned_in_order_then_201(
    service: PushService, vapid: Vapid
) -> None:
    sub = service.new_subscription()
    other = service.new_subscription()
    service.respond(
        sub.endpoint,
        Reply(429, {"Retry-After": "30"}, "slow down"),
        Reply(410, body="gone"),
    )

    def send(target: TestSubscription, data: bytes) -> requests.Response:
        try:
            return webpush(
                target.as_json(),
                data,
                vapid_private_key=vapid,
                vapid_claims={"sub": SUB},
                ttl=60,
            )
        except WebPushException as exc:
            assert exc.response is not None
            return exc.response

    first, unaffected, second, third = (
        send(sub, b"1"),
        send(other, b"o"),
        send(sub, b"2"),
        send(sub, b"3"),
    )

    assert (first.status_code, first.headers["Retry-After"], first.text) == (429, "30", "slow down")
    assert unaffected.status_code == 201
    assert (second.status_code, second.text) == (410, "gone")
    assert third.status_code == 201
    # Scripted replies still record the decrypted push, so tests can see what was attempted.
    assert [(p.status, p.plaintext) for p in service.pushes_for(sub.endpoint)] == [
        (429, b"1"),
        (410, b"2"),
        (201, b"3"),
    ]


def test_refused_push_does_not_consume_a_scripted_reply(service: PushService) -> None:
    sub = service.new_subscription()
    service.respond(sub.endpoint, Reply(503, {"Retry-After": "5"}))
    key = ec.generate_private_key(ec.SECP256R1())
    headers = {"Content-Encoding": "aes128gcm"}
    headers["Authorization"] = vapid_header(key, good_claims(service))

    refused = post(sub.endpoint, encrypt(sub, b"a"), headers)
    scripted = post(sub.endpoint, encrypt(sub, b"b"), {**headers, "TTL": "0"})

    assert (refused.status_code, scripted.status_code) == (400, 503)


def test_wait_for_times_out_with_a_dump(service: PushService, vapid: Vapid) -> None:
    sub = service.new_subscription()
    webpush(sub.as_json(), b"seen", vapid_private_key=vapid, vapid_claims={"sub": SUB}, ttl=1)

    assert len(service.wait_for_count(1, timeout=1)) == 1
    with pytest.raises(AssertionError, match="seen"):
        service.wait_for(lambda pushes: len(pushes) > 1, timeout=0.2)
    service.clear()
    assert service.received == []


async def _firefox_session(service: PushService, key: ec.EllipticCurvePrivateKey) -> None:
    """Play Firefox over the WebSocket: hello, register, receive a push, ack, go offline."""
    loop = asyncio.get_running_loop()
    server_key = public_b64(key)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(service.websocket_url, protocols=("push-notification",)) as ws,
    ):
        await ws.send_json({"messageType": "hello", "use_webpush": True, "broadcasts": {}})
        hello = await ws.receive_json(timeout=5)
        assert hello["status"] == 200 and hello["use_webpush"] is True and hello["uaid"]
        uaid = hello["uaid"]
        await ws.send_str("{}")
        assert await ws.receive_json(timeout=5) == {}

        await ws.send_json({"messageType": "register", "channelID": "chan-1", "key": server_key})
        registered = await ws.receive_json(timeout=5)
        assert registered["status"] == 200
        endpoint = registered["pushEndpoint"]
        assert endpoint == f"{service.origin}/wpush/chan-1"

        body = b"\x00" * 100
        good = vapid_header(key, good_claims(service))
        headers = {"TTL": "60", "Content-Encoding": "aes128gcm", "Authorization": good}
        response = await loop.run_in_executor(None, post, endpoint, body, headers)
        assert response.status_code == 201
        notification = await ws.receive_json(timeout=5)
        assert notification["messageType"] == "notification"
        assert notification["channelID"] == "chan-1"
        assert base64.urlsafe_b64decode(notification["data"] + "==") == body
        assert notification["headers"] == {"encoding": "aes128gcm"}
        update = {"channelID": "chan-1", "version": notification["version"], "code": 100}
        await ws.send_json({"messageType": "ack", "updates": [update]})
        ack = await loop.run_in_executor(None, service.wait_for_ack, notification["version"])
        assert ack["code"] == 100

        other = vapid_header(ec.generate_private_key(ec.SECP256R1()), good_claims(service))
        wrong = await loop.run_in_executor(
            None, post, endpoint, body, {**headers, "Authorization": other}
        )
        assert wrong.status_code == 403

    # Offline: the push is accepted and delivered on the next hello with the same uaid.
    response = await loop.run_in_executor(None, post, endpoint, body, headers)
    assert response.status_code == 201
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(service.websocket_url, protocols=("push-notification",)) as ws,
    ):
        await ws.send_json({"messageType": "hello", "uaid": uaid, "use_webpush": True})
        assert (await ws.receive_json(timeout=5))["uaid"] == uaid
        queued = await ws.receive_json(timeout=5)
        assert queued["messageType"] == "notification" and queued["channelID"] == "chan-1"
        await ws.send_json({"messageType": "unregister", "channelID": "chan-1"})
        assert (await ws.receive_json(timeout=5))["status"] == 200


def test_firefox_websocket_protocol(service: PushService) -> None:
    key = ec.generate_private_key(ec.SECP256R1())

    asyncio.run(_firefox_session(service, key))

    statuses = [p.status for p in service.received]
    assert statuses == [201, 403, 201]
    assert service.received[0].plaintext is None and service.received[0].version
    assert service.channels == []
