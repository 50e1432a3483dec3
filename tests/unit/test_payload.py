"""One notification shape for the inbox, the live channel and the push message."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from webpush_server.notifications.payload import (
    is_on_origin,
    message_problem,
    notification_json,
    push_payload,
)
from webpush_server.push.crypto import MAX_PLAINTEXT

CREATED = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
FIELDS = {
    "id": 7,
    "kind": "book_available",
    "title": "Dune is ready",
    "body": "Pick it up by Friday.",
    "url": "/library/holds",
    "tag": "hold-3",
    "created_at": CREATED,
}


def test_inbox_shape_carries_the_read_state():
    read = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert notification_json(**FIELDS, read_at=read) == {
        "id": 7,
        "kind": "book_available",
        "title": "Dune is ready",
        "body": "Pick it up by Friday.",
        "url": "/library/holds",
        "tag": "hold-3",
        "created_at": "2026-11-22T09:30:00+00:00",
        "read_at": "2026-11-22T10:00:00+00:00",
    }
    assert notification_json(**FIELDS)["read_at"] is None


ORIGIN = "https://notify.webpush-server.dev"
PUSH = FIELDS | {"navigate": f"{ORIGIN}/n/7", "origin": ORIGIN}


def test_push_message_is_declarative_web_push_compact_and_utf8():
    payload, tickle = push_payload(
        **PUSH | {"body": "Café ☕"}, icon=f"{ORIGIN}/icon.png", lang="en", app_badge=3
    )
    assert not tickle
    assert json.loads(payload) == {
        "web_push": 8030,
        "notification": {
            "title": "Dune is ready",
            "body": "Café ☕",
            "navigate": f"{ORIGIN}/n/7",
            "tag": "hold-3",
            "icon": f"{ORIGIN}/icon.png",
            "lang": "en",
            "mutable": True,
            "data": {
                "id": 7,
                "kind": "book_available",
                "created_at": "2026-11-22T09:30:00+00:00",
                "url": "/library/holds",
            },
        },
        "app_badge": 3,
    }
    assert "Café ☕".encode() in payload  # UTF-8, not \u escapes: more fits in a record
    assert b", " not in payload and b": " not in payload


def test_the_sender_s_data_rides_in_the_notification_data():
    payload, _ = push_payload(**PUSH, data={"order": 12})
    message = json.loads(payload)
    assert message["notification"]["data"]["data"] == {"order": 12}
    assert "app_badge" not in message and "icon" not in message["notification"]


def tickle_of(navigate: str = f"{ORIGIN}/n/7") -> dict:
    return {
        "web_push": 8030,
        "notification": {
            "title": "New notification",
            "navigate": navigate,
            "mutable": True,
            "data": {"id": 7, "kind": "book_available", "tickle": True},
        },
    }


def test_a_message_too_big_for_one_record_becomes_a_tickle():
    fits, tickle = push_payload(**PUSH | {"body": ""})
    room = MAX_PLAINTEXT - len(fits)
    exactly, tickle = push_payload(**PUSH | {"body": "x" * room})
    assert (len(exactly), tickle) == (MAX_PLAINTEXT, False)
    over, tickle = push_payload(**PUSH | {"body": "x" * (room + 1)})
    assert tickle
    assert json.loads(over) == tickle_of()
    assert len(over) < 300


@pytest.mark.parametrize("title", ["", "   "])
def test_a_message_without_a_title_goes_as_a_tickle(title):
    payload, tickle = push_payload(**PUSH | {"title": title})
    assert tickle and json.loads(payload) == tickle_of()


@pytest.mark.parametrize(
    "navigate",
    [
        "/n/7",  # not absolute
        "https://evil.example/n/7",  # another host
        "http://notify.webpush-server.dev/n/7",  # another scheme
        "https://notify.webpush-server.dev:8443/n/7",  # another port
        "javascript:alert(1)",
        "https://user@notify.webpush-server.dev/n/7",
    ],
)
def test_navigate_must_be_absolute_on_our_origin(navigate):
    message = json.loads(push_payload(**FIELDS, navigate=f"{ORIGIN}/n/7", origin=ORIGIN)[0])
    message["notification"]["navigate"] = navigate
    assert message_problem(message, 100, ORIGIN) == "navigate is not an absolute URL on our origin"
    assert not is_on_origin(navigate, ORIGIN)
    # Never sent: not even as a tickle, whose only link it would be.
    with pytest.raises(ValueError, match="navigate"):
        push_payload(**FIELDS, navigate=navigate, origin=ORIGIN)


def test_a_tickle_can_be_asked_for():
    payload, tickle = push_payload(**PUSH, tickle=True)
    assert (json.loads(payload), tickle) == (tickle_of(), True)
