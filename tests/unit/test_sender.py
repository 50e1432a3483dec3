"""The sender against the local push service: one request's failure is only its own."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.helpers import VAPID_SUBJECT
from tests.pushservice import Reply
from webpush_server.push.hosts import HostPolicy
from webpush_server.push.policy import Outcome
from webpush_server.push.sender import PushRequest, Sender, SyncSender
from webpush_server.push.vapid import VapidSigner, load_private_key


@pytest.fixture
def sender(push_service, vapid_pem):
    push_service.clear()
    signer = VapidSigner(load_private_key(vapid_pem), VAPID_SUBJECT)
    policy = HostPolicy.parse(push_service.host_port)
    sync = SyncSender(lambda: Sender(signer, policy))
    yield sync
    sync.close()


def test_a_request_that_raises_is_its_own_result_and_the_rest_are_sent(sender, push_service):
    devices = [push_service.new_subscription() for _ in range(3)]
    requests = [
        PushRequest(key, d.endpoint, d.p256dh, d.auth, json.dumps({"id": key}).encode(), ttl=60)
        for key, d in enumerate(devices)
    ]
    requests += [
        # Stored before endpoints were checked for ASCII: the request line cannot hold it.
        replace(requests[0], key=10, endpoint=f"{push_service.origin}/push/中文"),
        # A bug in building the request (no TTL): still only this request's result.
        replace(requests[0], key=11, ttl=None),
        # An endpoint the URL parser chokes on.
        replace(requests[0], key=12, endpoint="http://[::1/push/x"),
    ]
    results = sender.send(requests)

    assert [(r.key, r.outcome) for r in results] == [
        (0, Outcome.SENT),
        (1, Outcome.SENT),
        (2, Outcome.SENT),
        (10, Outcome.ERROR),
        (11, Outcome.ERROR),
        (12, Outcome.ERROR),
    ]
    assert "not ASCII" in results[3].error
    assert results[4].error.startswith("TypeError")
    assert results[5].error.startswith("ValueError")
    pushes = push_service.wait_for_count(3)
    assert sorted(p.json["id"] for p in pushes) == [0, 1, 2]
    assert sorted(p.endpoint for p in pushes) == sorted(d.endpoint for d in devices)


def test_with_max_wait_an_early_answer_is_not_held_back_behind_slow_ones(sender, push_service):
    quick, *slow = (push_service.new_subscription() for _ in range(3))
    push_service.respond(quick.endpoint, Reply(429, {"Retry-After": "1"}))
    for device in slow:
        push_service.respond(device.endpoint, Reply(201, delay=2))
    requests = [
        PushRequest(key, d.endpoint, d.p256dh, d.auth, b"{}", ttl=60)
        for key, d in enumerate([quick, *slow])
    ]

    chunks = list(sender.send_in_chunks(requests, 50, max_wait=0.1))
    # The 429 came alone, long before the slow answers: its chunk did not wait to fill.
    assert [[(r.key, r.outcome) for r in chunk] for chunk in chunks][0] == [
        (0, Outcome.RATE_LIMITED)
    ]
    assert sorted(r.key for chunk in chunks[1:] for r in chunk) == [1, 2]
    assert chunks[0][0].retry_after == 1


def test_without_max_wait_a_chunk_waits_until_it_is_full_or_the_batch_is_done(sender, push_service):
    quick, slow = (push_service.new_subscription() for _ in range(2))
    push_service.respond(quick.endpoint, Reply(429, {"Retry-After": "1"}))
    push_service.respond(slow.endpoint, Reply(201, delay=1))
    requests = [
        PushRequest(key, d.endpoint, d.p256dh, d.auth, b"{}", ttl=60)
        for key, d in enumerate([quick, slow])
    ]

    (chunk,) = sender.send_in_chunks(requests, 50)
    assert sorted((r.key, r.outcome) for r in chunk) == [
        (0, Outcome.RATE_LIMITED),
        (1, Outcome.SENT),
    ]
