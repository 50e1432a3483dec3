"""One notification shape for the inbox, the live channel and the push message."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from webpush_server.notifications.payload import notification_json, push_payload
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


def test_push_message_is_the_same_shape_without_read_state_compact_and_utf8():
    payload, tickle = push_payload(**FIELDS | {"body": "Café ☕"})
    assert not tickle
    expected = notification_json(**FIELDS | {"body": "Café ☕"})
    del expected["read_at"]
    assert json.loads(payload) == expected
    assert list(json.loads(payload)) == list(expected)  # the same key order
    assert "Café ☕".encode() in payload  # UTF-8, not \u escapes: more fits in a record
    assert b", " not in payload and b": " not in payload


def test_a_message_too_big_for_one_record_becomes_a_tickle():
    fits, tickle = push_payload(**FIELDS | {"body": ""})
    room = MAX_PLAINTEXT - len(fits)
    exactly, tickle = push_payload(**FIELDS | {"body": "x" * room})
    assert (len(exactly), tickle) == (MAX_PLAINTEXT, False)
    over, tickle = push_payload(**FIELDS | {"body": "x" * (room + 1)})
    assert tickle
    assert json.loads(over) == {"id": 7, "kind": "book_available", "tickle": True}


def test_a_tickle_can_be_asked_for():
    payload, tickle = push_payload(**FIELDS, tickle=True)
    assert (json.loads(payload), tickle) == (
        {"id": 7, "kind": "book_available", "tickle": True},
        True,
    )
