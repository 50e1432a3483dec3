"""Live delivery to open tabs: real WebSocket and SSE clients against real gunicorn processes.

Notifications are recorded in this process, in another web process, or by a worker; they reach
every open tab through Redis pub/sub. Presence-aware routing decides whether Web Push is made.
"""

from __future__ import annotations

import json

import pytest
import requests
import websocket
from rq import Queue

from tests.factories import add_device, record_notification
from tests.helpers import (
    Process,
    close_websocket,
    delivery_statuses,
    is_visible,
    process_env,
    start_web,
    wait_until,
)
from webpush_server.devrun import flask_command
from webpush_server.jobs.queues import DEFAULT_QUEUE, connection

EMAIL = "live@webpush-server.dev"


class LiveSocket:
    """A WebSocket client of /ws, as live.js is: reads JSON messages, reports visibility."""

    def __init__(self, base_url: str, session: requests.Session, *, after: int = 0, **kw):
        url = base_url.replace("http://", "ws://") + "/ws" + (f"?after={after}" if after else "")
        cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        self.ws = websocket.create_connection(url, cookie=cookie, timeout=10, **kw)

    def receive(self) -> dict:
        return json.loads(self.ws.recv())

    def receive_until(self, predicate) -> list[dict]:
        """Read messages until one satisfies predicate; return all read."""
        seen = []
        while True:
            message = self.receive()
            seen.append(message)
            if predicate(message):
                return seen

    def visible(self, visible: bool) -> None:
        self.ws.send(json.dumps({"type": "visibility", "visible": visible}))

    def close(self) -> None:
        close_websocket(self.ws)


def notifications_in(messages: list[dict]) -> list[dict]:
    return [m["notification"] for m in messages if m["type"] == "notification"]


def record_in_job(user_id: int) -> int:
    """RQ job (run by a worker process): record a notification, as a scheduled job would."""
    from webpush_server.jobs.context import app_context
    from webpush_server.notifications.services import send_test

    with app_context():
        return send_test(user_id)


@pytest.fixture
def user_id(make_user) -> int:
    return make_user(EMAIL, name="Livia")


# -- refusals ----------------------------------------------------------------------------------


def test_websocket_refuses_anonymous_sessions_before_the_upgrade(live_server):
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(live_server.replace("http", "ws") + "/ws", timeout=5)
    assert refused.value.status_code == 401


@pytest.mark.parametrize("origin", ["http://evil.example", None])
def test_websocket_refuses_other_origins_before_the_upgrade(live_server, user_id, origin, login_as):
    session = login_as(EMAIL, server=live_server)
    options = {"origin": origin} if origin else {"suppress_origin": True}
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        LiveSocket(live_server, session, **options)
    assert refused.value.status_code == 403


def test_stream_requires_login(live_server):
    response = requests.get(live_server + "/api/notifications/stream", timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


# -- delivery ----------------------------------------------------------------------------------


def test_socket_gets_each_new_notification_and_the_unread_count(
    app, live_server, user_id, login_as
):
    socket = LiveSocket(live_server, login_as(EMAIL, server=live_server))
    assert socket.receive() == {"type": "unread_count", "count": 0}
    notification_id = record_notification(app, user_id)
    first, second = socket.receive(), socket.receive()
    assert first["type"] == "notification"
    assert first["notification"]["id"] == notification_id
    assert first["notification"]["title"] == "A book is ready"
    assert first["notification"]["tag"]
    assert second == {"type": "unread_count", "count": 1}
    socket.close()


def test_marking_read_in_one_tab_updates_the_count_in_the_others(
    app, live_server, user_id, login_as
):
    session = login_as(EMAIL, server=live_server)
    notification_id = record_notification(app, user_id)
    socket = LiveSocket(live_server, session)
    assert socket.receive() == {"type": "unread_count", "count": 1}
    response = session.post(f"{live_server}/api/notifications/{notification_id}/read")
    assert response.status_code == 200
    assert socket.receive() == {"type": "unread_count", "count": 0}
    socket.close()


def test_reconnect_catches_up_on_what_was_missed(app, live_server, user_id, login_as):
    session = login_as(EMAIL, server=live_server)
    socket = LiveSocket(live_server, session)
    socket.receive()
    seen = record_notification(app, user_id, title="Seen")
    assert notifications_in(socket.receive_until(lambda m: m["type"] == "unread_count"))
    socket.close()
    missed = [record_notification(app, user_id, title=f"Missed {i}") for i in range(2)]
    socket = LiveSocket(live_server, session, after=seen)
    messages = socket.receive_until(lambda m: m["type"] == "unread_count")
    assert [n["id"] for n in notifications_in(messages)] == missed
    assert messages[-1] == {"type": "unread_count", "count": 3}
    socket.close()


def test_stream_replays_from_last_event_id_then_streams(app, live_server, user_id, login_as):
    session = login_as(EMAIL, server=live_server)
    first = record_notification(app, user_id, title="First")
    second = record_notification(app, user_id, title="Second")
    response = session.get(
        live_server + "/api/notifications/stream",
        headers={"Last-Event-ID": str(first)},
        stream=True,
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["X-Accel-Buffering"] == "no"
    assert "no-cache" in response.headers["Cache-Control"]
    events = sse_events(response)
    replayed = next(events)
    assert (replayed["event"], replayed["id"]) == ("notification", str(second))
    assert json.loads(replayed["data"])["title"] == "Second"
    assert next(events)["event"] == "unread_count"
    third = record_notification(app, user_id, title="Third")
    streamed = next(events)
    assert (streamed["event"], streamed["id"]) == ("notification", str(third))
    assert json.loads(next(events)["data"]) == {"count": 3}
    response.close()


def sse_events(response):
    """Yield each SSE event as a dict of its fields; comments and `retry` are skipped."""
    fields: dict[str, str] = {}
    for line in response.iter_lines(decode_unicode=True):
        if line:
            name, _, value = line.partition(": ")
            if name and name != "retry":
                fields[name] = value
        elif fields:
            yield fields
            fields = {}


def test_every_tab_in_every_web_process_gets_notifications_from_anywhere(
    app, settings, user_id, tmp_path, redis_url, login_as
):
    one, server_one = start_web(settings, app.instance_path, tmp_path / "web1.log")
    two, server_two = start_web(settings, app.instance_path, tmp_path / "web2.log")
    worker = Process(
        flask_command("jobs", "worker"),
        process_env(settings, app.instance_path),
        tmp_path / "w.log",
    )
    try:
        sockets = [
            LiveSocket(one, login_as(EMAIL, server=one)),
            LiveSocket(two, login_as(EMAIL, server=two)),
        ]
        # A second tab, same user, other process.
        sockets.append(LiveSocket(two, login_as(EMAIL, server=one)))
        for socket in sockets:
            assert socket.receive()["type"] == "unread_count"
        # Recorded by web process one (the test notification)...
        from_web = (
            login_as(EMAIL, server=one).post(one + "/api/push/test").json()["notification_id"]
        )
        # ...and by a worker running a job, as a scheduled job would.
        job = Queue(DEFAULT_QUEUE, connection=connection(app)).enqueue(
            "tests.integration.test_live.record_in_job", user_id
        )
        for socket in sockets:
            got = []
            while len(got) < 2:
                got += notifications_in(socket.receive_until(lambda m: m["type"] == "notification"))
            assert {n["id"] for n in got} == {from_web, job.latest_result(timeout=10).return_value}
            socket.close()
    finally:
        for process in (worker, server_one, server_two):
            process.stop()


# -- presence-aware routing --------------------------------------------------------------------


def test_visible_tab_gets_it_live_and_web_push_is_skipped(
    app, live_server, user_id, patron_push_device, login_as
):
    socket = LiveSocket(live_server, login_as(EMAIL, server=live_server))
    socket.receive()
    socket.visible(True)
    wait_until(lambda: is_visible(app, user_id), "the tab to count as visible")
    notification_id = record_notification(app, user_id)
    assert notifications_in(socket.receive_until(lambda m: m["type"] == "notification"))
    assert delivery_statuses(app, notification_id) == ["skipped"]
    # `test` is configured to push even while a tab is visible.
    test_id = record_notification(app, user_id, kind="test", title="Test notification")
    assert delivery_statuses(app, test_id) == ["pending"]
    socket.close()


def test_hidden_or_closed_tab_means_web_push(
    app, live_server, user_id, patron_push_device, login_as
):
    socket = LiveSocket(live_server, login_as(EMAIL, server=live_server))
    socket.receive()
    socket.visible(True)
    wait_until(lambda: is_visible(app, user_id), "the tab to count as visible")
    socket.visible(False)
    wait_until(lambda: not is_visible(app, user_id), "the hidden tab to stop counting")
    hidden = record_notification(app, user_id)
    assert notifications_in(socket.receive_until(lambda m: m["type"] == "notification"))
    assert delivery_statuses(app, hidden) == ["pending"]
    socket.visible(True)
    wait_until(lambda: is_visible(app, user_id), "the tab to count as visible again")
    socket.close()
    wait_until(lambda: not is_visible(app, user_id), "the closed tab to stop counting")
    assert delivery_statuses(app, record_notification(app, user_id)) == ["pending"]


def test_heartbeats_notice_a_dead_connection_and_its_presence_lapses(
    app, settings, user_id, tmp_path, login_as
):
    url, server = start_web(
        settings, app.instance_path, tmp_path / "web.log", FLASK_LIVE_PING_SECONDS="0.5"
    )
    try:
        socket = LiveSocket(url, login_as(EMAIL, server=url))
        socket.receive()
        socket.visible(True)
        wait_until(lambda: is_visible(app, user_id), "the tab to count as visible")
        # The client stops reading, so it answers no ping: the server must give up on it.
        wait_until(lambda: not is_visible(app, user_id), "the dead tab to stop counting")
        socket.close()
    finally:
        server.stop()


@pytest.fixture
def patron_push_device(app, user_id, push_service):
    """One push subscription of the live test user, stored directly."""
    return add_device(app, user_id, push_service)


# -- what a web process subscribes to ------------------------------------------------------------


def test_a_web_process_subscribes_to_the_shards_of_its_tabs_only(
    app, live_server, user_id, make_user, login_as, redis_url
):
    from redis import Redis

    from webpush_server.realtime.broker import CHANNEL_PREFIX, channel, shard_of

    redis = Redis.from_url(redis_url)

    def subscribed() -> set[bytes]:
        return set(redis.pubsub_channels(f"{CHANNEL_PREFIX}*"))

    other = make_user("other-shard@webpush-server.dev")
    assert shard_of(other) != shard_of(user_id)  # consecutive ids
    assert subscribed() == set()
    first = LiveSocket(live_server, login_as(EMAIL, server=live_server))
    first.receive_until(lambda m: m["type"] == "unread_count")
    second = LiveSocket(live_server, login_as(EMAIL, server=live_server))
    second.receive_until(lambda m: m["type"] == "unread_count")
    # One subscription for the shard of the one user with tabs here; none for the other's.
    assert subscribed() == {channel(shard_of(user_id)).encode()}
    record_notification(app, user_id, title="For both tabs")
    for tab in (first, second):
        (note,) = notifications_in(tab.receive_until(lambda m: m["type"] == "notification"))
        assert note["title"] == "For both tabs"
    # The shard stays subscribed while one of its tabs is open, and ends with the last.
    first.close()
    second.visible(True)
    wait_until(lambda: is_visible(app, user_id), "the second tab visible")
    assert subscribed() == {channel(shard_of(user_id)).encode()}
    second.close()
    wait_until(lambda: subscribed() == set(), "the shard unsubscribed after the last tab")
