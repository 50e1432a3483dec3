"""The service API against real processes: gunicorn for races, RQ workers for schedules."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import requests
import websocket
from redis import Redis
from sqlalchemy import update

from tests.factories import add_device
from tests.helpers import Process, count, process_env, rows, wait_until
from tests.service_api import bearer, make_key, notify_body
from webpush_server.devrun import flask_command
from webpush_server.extensions import db
from webpush_server.notifications.models import Delivery, Notification
from webpush_server.realtime import slots
from webpush_server.realtime.broker import channel, shard_of
from webpush_server.service_api.models import ApiRequest
from webpush_server.service_api.services import release_due
from webpush_server.timeutil import utcnow


def test_simultaneous_twins_with_one_idempotency_key_record_once(
    app, live_server, make_user, push_service
):
    reader = make_user("reader@webpush-server.dev")
    add_device(app, reader, push_service)
    _, key = make_key(app)
    body = notify_body({"user_id": reader})
    twins = 8
    start = threading.Barrier(twins)
    answers: list[requests.Response] = []

    def send() -> None:
        with requests.Session() as session:
            session.get(f"{live_server}/login", timeout=10)  # connect before the barrier
            start.wait()
            answers.append(
                session.post(
                    f"{live_server}/api/v1/notifications",
                    json=body,
                    headers=bearer(key, **{"Idempotency-Key": "race-1"}),
                    timeout=30,
                )
            )

    threads = [threading.Thread(target=send) for _ in range(twins)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202] * twins, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert {a.json()["recipients"] for a in answers} == {1}
    assert count(app, ApiRequest) == 1
    assert count(app, Notification) == 1 and count(app, Delivery) == 1


def _worker(settings, app, log) -> Process:
    return Process(flask_command("jobs", "worker"), process_env(settings, app.instance_path), log)


def test_a_scheduled_announcement_appears_when_due_across_a_worker_restart(
    app, client, settings, redis_url, login_as, make_user, push_service, tmp_path
):
    reader = make_user("reader@webpush-server.dev")
    device = add_device(app, reader, push_service)
    _, key = make_key(app)
    live = Redis.from_url(redis_url).pubsub()
    live.subscribe(channel(shard_of(reader)))
    with app.app_context():
        # The reader has a tab open (its live slot): live messages carry the unread count.
        assert slots.acquire(reader, "tab-1")
    first = _worker(settings, app, tmp_path / "worker-1.log")
    # Wait for the first worker's scheduler to be up, so that it shuts down cleanly and hands
    # over its lock (a killed one would hold it for a minute: RQ's business, not ours).
    redis = Redis.from_url(redis_url)
    lock = "rq:scheduler-lock:default"
    wait_until(lambda: redis.exists(lock), f"the first worker's scheduler:\n{first.output()}")
    # Far enough ahead that a loaded machine still gets the restart in before it is due.
    send_at = utcnow() + timedelta(seconds=15)
    response = client.post(
        "/api/v1/notifications",
        json=notify_body({"user_id": reader}, send_at=send_at.isoformat()),
        headers=bearer(key),
    )
    assert response.status_code == 202 and response.json["status"] == "scheduled"
    request_id = response.json["id"]
    reader_api = login_as("reader@webpush-server.dev")
    # Recorded, but not in the inbox, not counted, not sent.
    assert reader_api.get("/api/notifications").json == {"notifications": [], "unread_count": 0}
    (delivery,) = rows(app, Delivery)
    assert delivery.status == "pending" and delivery.next_attempt_at == send_at
    status = client.get(f"/api/v1/notifications/{request_id}", headers=bearer(key)).json
    assert status["status"] == "scheduled" and status["send_at"] is not None

    # The worker that was there when it was scheduled goes away before it is due; another
    # one comes.
    first.stop()
    assert push_service.received == [] and utcnow() < send_at, "sent before the restart"
    wait_until(lambda: not redis.exists(lock), "the first worker to release its lock")
    second = _worker(settings, app, tmp_path / "worker-2.log")
    try:
        try:
            (push,) = push_service.wait_for(lambda p: len(p) >= 1, timeout=60)
        except AssertionError as error:
            from rq import Queue

            scheduled = Queue("default", connection=redis).scheduled_job_registry.get_job_ids()
            state = [(r.status, r.send_at) for r in rows(app, ApiRequest)]
            raise AssertionError(
                f"{error}\nrequests {state}, deliveries "
                f"{[(d.status, d.next_attempt_at) for d in rows(app, Delivery)]}, RQ scheduled "
                f"{scheduled}\nfirst worker:\n{first.output()}\nsecond worker:\n"
                f"{second.output()}"
            ) from None
        assert push.endpoint == device.endpoint
        assert push.received_at >= send_at.timestamp()
        assert push.received_at <= send_at.timestamp() + 30, second.output()
    finally:
        second.stop()
        redis.close()
    assert push.notification["title"] == "The library closes early today"
    inbox = reader_api.get("/api/notifications").json
    assert [n["id"] for n in inbox["notifications"]] == [status["recipients"][0]["notification_id"]]
    assert inbox["unread_count"] == 1
    # Open tabs heard about it when it was due, not before.
    frames = []  # each published item is [user id, notification id, the tabs' frames...]
    while (message := live.get_message(timeout=1)) is not None:
        if message["type"] == "message":
            for item in json.loads(message["data"]):
                assert item[0] == reader
                frames.extend(json.loads(text) for text in item[2:])
    live.close()
    assert [f["notification"]["title"] for f in frames if f["type"] == "notification"] == [
        "The library closes early today"
    ]
    assert [f["count"] for f in frames if f["type"] == "unread_count"] == [1]
    wait_until(
        lambda: (
            client.get(f"/api/v1/notifications/{request_id}", headers=bearer(key)).json["status"]
            == "sent"
        ),
        "the request to read as sent",
    )


def test_cancelling_a_scheduled_request_before_it_is_due_sends_and_shows_nothing(
    app, client, login_as, make_user, push_service, run_worker
):
    reader = make_user("reader@webpush-server.dev")
    device = add_device(app, reader, push_service)
    _, key = make_key(app)
    later = (utcnow() + timedelta(hours=1)).isoformat()
    sent = client.post(
        "/api/v1/notifications",
        json=notify_body({"user_id": reader}, send_at=later, cancellation_key="sale"),
        headers=bearer(key),
    ).json
    cancelled = client.post(
        "/api/v1/notifications/cancel", json={"cancellation_key": "sale"}, headers=bearer(key)
    )
    assert cancelled.json == {"cancelled": 1}
    # Time passes: it is due now, and the release job and the worker run.
    with app.app_context():
        db.session.execute(update(ApiRequest).values(send_at=utcnow() - timedelta(seconds=1)))
        db.session.execute(update(Notification).values(visible_at=None))  # as cancel left it
        db.session.commit()
        assert release_due() == 0
    run_worker()
    assert push_service.pushes_for(device.endpoint) == []
    assert [d.status for d in rows(app, Delivery)] == ["cancelled"]
    assert (
        login_as("reader@webpush-server.dev").get("/api/notifications").json["notifications"] == []
    )
    status = client.get(f"/api/v1/notifications/{sent['id']}", headers=bearer(key)).json
    assert status["status"] == "cancelled"


def test_release_publishes_once_even_when_run_twice(app, client, make_user, push_service):
    reader = make_user("reader@webpush-server.dev")
    add_device(app, reader, push_service)
    _, key = make_key(app)
    soon = (utcnow() + timedelta(seconds=30)).isoformat()
    client.post(
        "/api/v1/notifications",
        json=notify_body({"user_id": reader}, send_at=soon),
        headers=bearer(key),
    )
    with app.app_context():
        assert release_due() == 0  # not due yet
        db.session.execute(update(ApiRequest).values(send_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert release_due() == 1
        assert release_due() == 0
    assert count(app, ApiRequest, ApiRequest.status == "queued") == 1


def _sse_events(response):
    """Yield each SSE event of a stream as a dict of its fields (comments and retry skipped)."""
    fields: dict[str, str] = {}
    for line in response.iter_lines(decode_unicode=True):
        if line:
            name, _, value = line.partition(": ")
            if name and name != "retry":
                fields[name] = value
        elif fields:
            yield fields
            fields = {}


def _socket(base_url: str, session: requests.Session, after: int | None = None):
    url = base_url.replace("http://", "ws://") + "/ws" + (f"?after={after}" if after else "")
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    return websocket.create_connection(url, cookie=cookie, timeout=60)


def _ws_notifications(ws, want: int) -> list[dict]:
    """Read a WebSocket's messages until want notifications came; return those."""
    got: list[dict] = []
    while len(got) < want:
        message = json.loads(ws.recv())
        if message["type"] == "notification":
            got.append(message["notification"])
    return got


def test_released_notifications_reach_open_tabs_live_and_reconnecting_tabs_catch_up(
    app, live_server, settings, login_as, make_user, tmp_path
):
    email = "reader@webpush-server.dev"
    reader = make_user(email)
    _, key = make_key(app)
    api = requests.Session()

    def trigger(**fields) -> int:
        answer = api.post(
            f"{live_server}/api/v1/notifications",
            json=notify_body({"user_id": reader}, **fields),
            headers=bearer(key),
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        status = api.get(
            f"{live_server}/api/v1/notifications/{answer.json()['id']}",
            headers=bearer(key),
            timeout=30,
        ).json()
        return status["recipients"][0]["notification_id"]

    # Scheduled first (the older id), then one sent at once (the newer id) that every tab
    # below has already had: a cursor by id alone would never replay the scheduled one.
    send_at = utcnow() + timedelta(seconds=5)
    scheduled = trigger(title="Scheduled", send_at=send_at.isoformat())
    at_once = trigger(title="At once")
    assert scheduled < at_once
    tab = login_as(email, server=live_server)
    stream = tab.get(f"{live_server}/api/notifications/stream", stream=True, timeout=60)
    events = _sse_events(stream)
    hello = next(events)
    assert (hello["event"], json.loads(hello["data"])) == ("unread_count", {"count": 1})
    ws = _socket(live_server, tab)
    assert json.loads(ws.recv()) == {"type": "unread_count", "count": 1}
    worker = _worker(settings, app, tmp_path / "worker.log")
    try:
        # Open tabs hear it live at its release (the worker's scheduled release job).
        event = next(events)
        assert (event["event"], event["id"]) == ("notification", str(scheduled)), event
        assert json.loads(event["data"])["title"] == "Scheduled"
        count_event = next(events)
        assert (count_event["event"], json.loads(count_event["data"])) == (
            "unread_count",
            {"count": 2},
        )
        assert [n["id"] for n in _ws_notifications(ws, 1)] == [scheduled]
        assert json.loads(ws.recv()) == {"type": "unread_count", "count": 2}
    finally:
        stream.close()
        ws.close()
        worker.stop()
    assert utcnow() >= send_at
    # Tabs that were away during the release come back with the newest id they had.
    replay = tab.get(
        f"{live_server}/api/notifications/stream",
        headers={"Last-Event-ID": str(at_once)},
        stream=True,
        timeout=30,
    )
    first = next(_sse_events(replay))
    replay.close()
    assert (first["event"], first["id"]) == ("notification", str(scheduled)), first
    back = _socket(live_server, tab, after=at_once)
    try:
        assert [n["id"] for n in _ws_notifications(back, 1)] == [scheduled]
    finally:
        back.close()
    # The poll (the inbox API) lists it too, now that it is visible.
    inbox = tab.get(f"{live_server}/api/notifications", timeout=30).json()
    assert sorted(n["id"] for n in inbox["notifications"]) == [scheduled, at_once]
    assert inbox["unread_count"] == 2
