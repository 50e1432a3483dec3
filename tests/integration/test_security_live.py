"""Live connections per user are bounded across WebSocket and SSE; the Origin check counts the
scheme. Against a real gunicorn process."""

from __future__ import annotations

import pytest
import requests
import websocket

from tests.helpers import (
    Process,
    close_websocket,
    free_port,
    process_env,
    wait_for_http,
    wait_until,
)
from webpush_server.devrun import web_command

EMAIL = "tabs@webpush-server.dev"


@pytest.fixture
def server(app, make_user, settings, tmp_path):
    """gunicorn with a thread for every stream this test opens."""
    make_user(EMAIL)
    make_user("other@webpush-server.dev")
    port = free_port()
    process = Process(
        web_command(f"127.0.0.1:{port}", threads=32),
        process_env(settings, app.instance_path),
        tmp_path / "web.log",
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/login", process)
    yield url
    process.stop()


def open_socket(base: str, session: requests.Session, **kw) -> websocket.WebSocket:
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    ws = websocket.create_connection(
        base.replace("http://", "ws://") + "/ws", cookie=cookie, timeout=10, **kw
    )
    try:
        assert '"unread_count"' in ws.recv()  # the hello: this socket holds a slot
    except BaseException:
        close_websocket(ws)  # a refused socket must not leak into a later test's warnings
        raise
    return ws


def open_stream(base: str, session: requests.Session) -> requests.Response:
    stream = session.get(base + "/api/notifications/stream", stream=True, timeout=10)
    if stream.status_code == 200:
        # The first line arrives once the slot is held. Keep the iterator: a discarded one
        # closes the connection (urllib3), and the server frees the slot at once.
        stream.lines = stream.iter_lines()  # type: ignore[attr-defined]
        next(stream.lines)  # type: ignore[attr-defined]
    return stream


def refused_socket_code(base: str, session: requests.Session) -> int:
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    ws = websocket.create_connection(
        base.replace("http://", "ws://") + "/ws", cookie=cookie, timeout=10
    )
    try:
        frame = ws.recv_frame()
        assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
        return int.from_bytes(frame.data[:2], "big")
    finally:
        close_websocket(ws)


def test_ten_streams_per_user_then_4429_and_429(server, login_as):
    session = login_as(EMAIL, server=server)
    sockets = [open_socket(server, session) for _ in range(6)]
    streams = [open_stream(server, session) for _ in range(4)]
    assert all(s.status_code == 200 for s in streams)
    try:
        assert refused_socket_code(server, session) == 4429
        over = session.get(server + "/api/notifications/stream", timeout=10)
        assert over.status_code == 429
        assert over.json()["error"]["code"] == "rate_limited"
        assert int(over.headers["Retry-After"]) >= 1
        # Someone else's tabs are not counted against this user.
        other_session = login_as("other@webpush-server.dev", server=server)
        open_socket(server, other_session).close()
        other_session.close()
        # Closing one frees its slot (once the server has noticed the close).
        sockets.pop().close()
        wait_until(lambda: _opens(server, session, sockets), "a freed slot")
    finally:
        for ws in sockets:
            close_websocket(ws)
        for stream in streams:
            stream.close()
        session.close()


def _opens(base: str, session: requests.Session, sockets: list) -> bool:
    try:
        sockets.append(open_socket(base, session))
        return True
    except (AssertionError, websocket.WebSocketException):
        return False


def test_a_crashed_processes_slots_lapse(make_app):
    from webpush_server.realtime import slots

    app = make_app(LIVE_MAX_CONNECTIONS_PER_USER=2, LIVE_SLOT_SECONDS=1)
    with app.app_context():
        assert slots.acquire(7, "a") and slots.acquire(7, "b")
        assert not slots.acquire(7, "c")
        # Nobody releases a and b (their process died): they lapse by themselves.
        wait_until(lambda: slots.acquire(7, "c"), "lapsed slots", timeout=10)
        slots.release(7, "c")


def test_the_origin_check_counts_the_scheme(server, login_as):
    session = login_as(EMAIL, server=server)
    host = server.removeprefix("http://")
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        open_socket(server, session, origin=f"https://{host}")
    assert refused.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException):
        open_socket(server, session, origin="http://evil.example.org")
    open_socket(server, session, origin=f"http://{host}").close()
    session.close()
