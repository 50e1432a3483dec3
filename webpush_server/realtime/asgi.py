"""The web process as one ASGI app: pages on a thread pool, live connections on the event loop.

Pages, the API and polling are the Flask app, run by a2wsgi on `threads` threads as gunicorn's
gthread ran them. /ws and the SSE stream are opened by their Flask views too (handshake), in a
thread, and then held here as coroutines: an open tab costs a few KiB and no thread, so one
process holds ten thousand of them (bench/live.py).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import WSGIMiddleware, build_environ
from flask import Flask

from ..metrics import LIVE_CONNECTIONS
from ..redis_server import resolve_url
from . import broker, slots
from .handshake import ENVIRON_KEY, Opening
from .hub import PING, Hub, Item, Listener, visible_pairs
from .sse import events_of
from .ws import CLOSE_TOO_MANY, SEND_TEXTS

log = logging.getLogger(__name__)

STREAM_PATH = "/api/notifications/stream"
Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict], Any]


class LiveApp:
    """The ASGI app of a web process around the Flask app."""

    def __init__(self, flask_app: Flask, threads: int = 32) -> None:
        self.flask = flask_app
        self.threads = threads
        self._pages: WSGIMiddleware | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._hub: Hub | None = None
        self._tending: asyncio.Task[None] | None = None
        self._streams: set[Listener] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        self._start()
        if kind == "websocket":
            await self._socket(scope, receive, send)
        elif scope["path"] == STREAM_PATH and scope["method"] == "GET":
            await self._stream(scope, receive, send)
        else:
            pages: Any = self._pages
            await pages(scope, receive, send)

    # -- the process's parts ----------------------------------------------------------------

    def _start(self) -> None:
        if self._hub is not None:
            return
        self._pages = WSGIMiddleware(self.flask, workers=self.threads)  # type: ignore[arg-type]
        # Live handshakes and Redis upkeep run here, apart from the pages' threads.
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="live")
        url = resolve_url(self.flask.config.get("REDIS_URL"), self.flask.instance_path)
        self._hub = Hub(url)
        self._hub.start()
        self._tending = asyncio.get_running_loop().create_task(self._tend())

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._tending is not None:
                    self._tending.cancel()
                if self._hub is not None:
                    await self._hub.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _sync(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run function(*args) in a thread, in an app context (Redis, the database)."""

        def run() -> Any:
            with self.flask.app_context():
                return function(*args)

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    async def _tend(self) -> None:
        """Keep every tab's slot and visible presence from lapsing; ping the SSE streams."""
        config = self.flask.config
        every = min(
            config["LIVE_PING_SECONDS"],
            config["LIVE_PRESENCE_SECONDS"] / 2,
            config["LIVE_SLOT_SECONDS"] / 3,
        )
        assert self._hub is not None
        while True:
            await asyncio.sleep(every)
            for listener in self._streams:
                listener.put(PING)  # comments keep proxies from timing out
            tabs = self._hub.listeners()
            try:
                await self._sync(_keep, [(x.user_id, x.id) for x in tabs], visible_pairs(tabs))
            except Exception:
                log.warning("could not refresh the live slots and presence", exc_info=True)

    # -- opening a tab: the Flask view, in a thread ----------------------------------------

    async def _open(self, scope: Scope) -> tuple[Opening, int, list, bytes]:
        assert self._hub is not None
        found = Opening(self._hub, asyncio.get_running_loop())
        status, headers, body = await asyncio.get_running_loop().run_in_executor(
            self._pool, self._view, scope, found
        )
        return found, status, headers, body

    def _view(self, scope: Scope, found: Opening) -> tuple[int, list, bytes]:
        """Run the Flask view of scope's path with found in its environ; return its answer."""
        http = {**scope, "method": "GET", "http_version": scope.get("http_version", "1.1")}
        # A WebSocket's ws:// is http:// to the app (the Origin check, cookies, url_for).
        scheme = scope.get("scheme", "ws")
        http["scheme"] = {"ws": "http", "wss": "https"}.get(scheme, scheme)
        environ: dict[str, Any] = dict(build_environ(http, io.BytesIO()))  # type: ignore[arg-type]
        environ[ENVIRON_KEY] = found
        answer: list = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            answer[:] = [int(status.split(" ", 1)[0]), headers]

        chunks = self.flask(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        status, headers = answer
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return status, raw, body

    async def _close(self, listener: Listener, transport: str) -> None:
        assert self._hub is not None
        self._hub.detach(listener)
        LIVE_CONNECTIONS.labels(transport=transport).dec()
        try:
            await self._sync(_release, listener.user_id, listener.id, listener.visible)
        except Exception:
            log.warning("could not release a live slot; it lapses by itself", exc_info=True)

    # -- the WebSocket ----------------------------------------------------------------------

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        found, status, headers, body = await self._open(scope)
        listener = found.listener
        if listener is None and not found.refused:
            await _refuse_socket(scope, send, status, headers, body)
            return
        if listener is None:
            # Over the limit: only an open socket can carry the close code live.js reads.
            await send({"type": "websocket.accept"})
            await send(
                {"type": "websocket.close", "code": CLOSE_TOO_MANY,
                 "reason": "Too many live connections."}
            )  # fmt: skip
            return
        LIVE_CONNECTIONS.labels(transport="websocket").inc()
        try:
            await send({"type": "websocket.accept"})
            # Our uvicorn protocol writes a tab's frames in one go (ops/ws_protocol.py); any
            # other server, or a socket that is paused or closing, takes the ASGI path.
            send_texts = scope.get("extensions", {}).get(SEND_TEXTS)

            def write_now(item: Item) -> bool:
                return send_texts(_fresh(item, listener.replayed))

            async def write(item: Item) -> None:
                frames = _fresh(item, listener.replayed)
                if send_texts is not None and send_texts(frames):
                    return
                for text in frames:
                    await send({"type": "websocket.send", "text": text})

            for message in found.hello:
                await send({"type": "websocket.send", "text": _dumps(message)})
            listener.bind(write, write_now if send_texts is not None else None)
            while True:
                event = await receive()
                if event["type"] == "websocket.disconnect":
                    break
                state = _visibility(event.get("text") or event.get("bytes") or "")
                if state is not None and state != listener.visible:
                    listener.visible = state
                    await self._sync(_set_visible, listener.user_id, listener.id, state)
        finally:
            await self._close(listener, "websocket")

    # -- the SSE stream ---------------------------------------------------------------------

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        found, status, headers, body = await self._open(scope)
        listener = found.listener
        if listener is None:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        LIVE_CONNECTIONS.labels(transport="sse").inc()
        self._streams.add(listener)
        try:
            headers = [(k, v) for k, v in headers if k != b"content-length"]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            # The client reconnects after `retry` ms.
            hello = b"retry: 3000\n\n" + b"".join(events_of(m) for m in found.hello)
            await send({"type": "http.response.body", "body": hello, "more_body": True})

            async def write(item: Item) -> None:
                if item is PING:
                    chunk = b": ping\n\n"
                else:
                    frames = _fresh(item, listener.replayed)
                    chunk = b"".join(events_of(json.loads(text)) for text in frames)
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})

            listener.bind(write)
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            self._streams.discard(listener)
            await self._close(listener, "sse")


async def _refuse_socket(scope: Scope, send: Send, status: int, headers: list, body: bytes):
    """Answer a refused WebSocket handshake with the view's response (or a bare 403)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


# One encoder: json.dumps with separators builds a JSONEncoder per call, 8 % of a fan-out.
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _fresh(item: Item, replayed: set[int]) -> list[str]:
    """Return an item's frames for a tab, without a notification it got in its replay."""
    if replayed and item[1] in replayed:
        return item[3:]  # its own frame comes first (broker.wire); the count stays
    return item[2:]


def _visibility(text: str | bytes) -> bool | None:
    """Return the visibility a client message reports, or None for anything else."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        # A frame of 4 KiB can still nest 2,000 deep, past json's recursion limit.
        return None
    if isinstance(message, dict) and message.get("type") == "visibility":
        return bool(message.get("visible"))
    return None


def _set_visible(user_id: int, listener_id: str, visible: bool) -> None:
    try:
        broker.set_visible(user_id, listener_id, visible)
    except Exception:
        # Without presence the user gets Web Push as well: noisy, but nothing is lost.
        log.warning("could not record presence", exc_info=True)


def _keep(held: list[tuple[int, str]], visible: list[tuple[int, str]]) -> None:
    slots.refresh(held)
    broker.keep_visible(visible)


def _release(user_id: int, listener_id: str, visible: bool) -> None:
    slots.release(user_id, listener_id)
    if visible:
        _set_visible(user_id, listener_id, False)
