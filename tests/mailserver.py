"""A real SMTP server for the tests (aiosmtpd): keeps what arrives, refuses on request.

refuse(address, code) makes RCPT TO that address answer code (4xx: try later, 5xx: never)
until allow(address); every accepted message is parsed and kept with its envelope.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.helpers import free_port


@dataclass
class ReceivedMail:
    """One message as the server took it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else ""

    def __getitem__(self, header: str) -> str | None:
        value = self.message.get(header)
        return None if value is None else str(value)


class _Handler:
    def __init__(self, server: MailServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options):
        refusal = self.server.refusals.get(address.lower())
        if refusal is not None:
            self.server.refused.append((address, refusal))
            return f"{refusal} refused by the test"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.server.lock:
            self.server.received.append(
                ReceivedMail(
                    envelope.mail_from, list(envelope.rcpt_tos), parsed, envelope.original_content
                )
            )
        return "250 Message accepted"


class MailServer:
    """aiosmtpd on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[ReceivedMail] = []
        self.refused: list[tuple[str, int]] = []
        self.refusals: dict[str, int] = {}
        self.lock = threading.Lock()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> MailServer:
        self.controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def refuse(self, address: str, code: int) -> None:
        self.refusals[address.lower()] = code

    def allow(self, address: str) -> None:
        self.refusals.pop(address.lower(), None)

    def clear(self) -> None:
        with self.lock:
            self.received.clear()
        self.refused.clear()
        self.refusals.clear()

    def to(self, address: str) -> list[ReceivedMail]:
        with self.lock:
            return [m for m in self.received if address in m.rcpt_tos]

    def wait_for_count(self, n: int, timeout: float = 10) -> list[ReceivedMail]:
        """Wait until n messages arrived (the send is synchronous; this covers live workers)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.received) >= n:
                    return list(self.received)
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {n} messages arrived")
            time.sleep(0.02)
