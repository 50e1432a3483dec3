"""The web process's WebSocket protocol (ops/ws_protocol.py) under a real uvicorn server: its
send_texts writes frames a real client reads, refuses a socket that has closed, and leaves
the ASGI path as it was."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import pytest
import uvicorn
import websocket
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from tests.helpers import close_websocket, free_port, wait_until
from webpush_server.ops.ws_protocol import Protocol, text_frame
from webpush_server.realtime.ws import SEND_TEXTS

TEXTS = ["a", "é" * 100, "x" * 125, "y" * 126, "z" * 70_000]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 100_000])
def test_text_frame_is_what_a_websocket_parser_reads(size):
    payload = ("ü" * size).encode()[:size]
    reader = StreamReader()
    reader.feed_data(text_frame(payload))
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
        raise AssertionError("the parser wanted more bytes than the frame has")
    except StopIteration as done:
        frame = done.value
    assert (frame.opcode, frame.fin, bytes(frame.data)) == (Opcode.TEXT, True, payload)


class _Server:
    """uvicorn with our protocol and a small app, on a thread of its own."""

    def __init__(self) -> None:
        self.results: list[bool] = []
        self.after_close: list[bool] = []
        self.protocols: list[weakref.ref] = []
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, ws=Protocol, interface="asgi3",
            lifespan="off", log_level="warning",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def app(self, scope, receive, send) -> None:
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        send_texts = scope["extensions"][SEND_TEXTS]
        self.protocols.append(weakref.ref(send_texts.__self__))
        self.results.append(send_texts(TEXTS[:-1]))
        await send({"type": "websocket.send", "text": TEXTS[-1]})  # the ASGI way still works
        while (await receive())["type"] != "websocket.disconnect":
            pass
        await asyncio.sleep(0)
        self.after_close.append(send_texts(["too late"]))

    def __enter__(self) -> _Server:
        self.thread.start()
        wait_until(lambda: self.server.started, "uvicorn to start")
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def test_send_texts_writes_whole_frames_to_an_open_socket_and_refuses_a_closed_one():
    with _Server() as server:
        ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws", timeout=10)
        try:
            got = [ws.recv() for _ in TEXTS]
        finally:
            close_websocket(ws)
        wait_until(lambda: server.after_close, "the app to see the disconnect")
    assert server.results == [True]
    assert got == TEXTS
    assert server.after_close == [False]


def test_a_closed_socket_is_freed_by_refcounting_without_a_garbage_collection():
    # Its objects pointed at each other (the protocol and the transport, websockets' protocol
    # and its parser): only a full collection found them, and a web process holding 10,000
    # sockets pays about a second for one.
    with _Server() as server:
        gc.disable()
        try:
            ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/ws", timeout=10)
            for _ in TEXTS:
                ws.recv()
            close_websocket(ws)
            wait_until(lambda: server.after_close, "the app to see the disconnect")
            (protocol,) = server.protocols
            wait_until(lambda: protocol() is None, "the closed socket's protocol to be freed")
        finally:
            gc.enable()
