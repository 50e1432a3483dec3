"""The web process's WebSocket protocol: uvicorn's sans-I/O one, lighter per open socket.

Three changes, for a process that holds thousands of open tabs:
- send_texts writes a tab's frames (a notification and its unread count) in one transport
  write, framed here, instead of an ASGI send, a websockets frame and a write per frame:
  the live channel offers it through the scope (realtime.ws.SEND_TEXTS).
- Once accepted, the handshake's response is let go.
- Once closed, the socket's cycles are broken, so refcounting frees it at once: a full
  collection of a process with 10,000 sockets takes about a second (bench/README).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State
from websockets.server import ServerProtocol

from ..realtime.ws import SEND_TEXTS

_FIN_TEXT = 0x81  # FIN + opcode 1 (RFC 6455 5.2); a server's frames are not masked
_UVICORN_STATE = ("close_sent", "disconnected", "initial_response", "writable", "conn", "transport")


def text_frame(payload: bytes) -> bytes:
    """Return one unmasked, final text frame carrying payload (RFC 6455 5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((_FIN_TEXT, size)) + payload
    if size < 1 << 16:
        return bytes((_FIN_TEXT, 126)) + size.to_bytes(2, "big") + payload
    return bytes((_FIN_TEXT, 127)) + size.to_bytes(8, "big") + payload


class Protocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol with send_texts and a lighter open socket."""

    def handle_connect(self, event: Any) -> None:
        """Open the ASGI side as uvicorn does, offering send_texts in the scope."""
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # none when the handshake was refused
        # send_texts reads uvicorn's own state: a release that renames it gets the ASGI path
        # (slower, still right) and test_ws_protocol fails, instead of tabs that hear nothing.
        if scope is not None and all(hasattr(self, name) for name in _UVICORN_STATE):
            scope["extensions"][SEND_TEXTS] = self.send_texts

    _lost = _finished = False

    def connection_lost(self, exc: Exception | None) -> None:
        """Close as uvicorn does; let go of the socket's cycles once the app is done too."""
        super().connection_lost(exc)
        self._lost = True
        self._let_go()

    def on_task_complete(self, task: Any) -> None:
        """Forget the app's task as uvicorn does; let go once the connection is lost too."""
        super().on_task_complete(task)
        self._finished = True
        self._let_go()

    def _let_go(self) -> None:
        # With the connection lost and the app returned, nothing touches this socket again:
        # break the cycles (this protocol and the transport, websockets' protocol and its
        # parser, the scope's send_texts) so refcounting frees the socket now, instead of a
        # full collection finding its 28 objects later.
        if not (self._lost and self._finished):
            return
        self.conn.parser = None  # type: ignore[assignment]
        self.scope = None  # type: ignore[assignment]
        self.transport = None  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        """Send an ASGI message; after the accept, drop what only the handshake needed."""
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            self.request = self.response = None  # type: ignore[assignment]

    def send_texts(self, texts: Sequence[str]) -> bool:
        """Write texts as text frames in one write; False if the socket cannot take them now.

        The websockets state machine need not see them: data frames change none of its
        state, and an open socket is checked first, as its own send_text would.
        """
        conn: ServerProtocol = self.conn
        if (
            self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.writable.is_set()
            or conn.state is not State.OPEN
            or self.transport.is_closing()
        ):
            return False
        if texts:  # a replayed notification alone leaves nothing to send
            self.transport.write(b"".join([text_frame(text.encode()) for text in texts]))
        return True
