"""`make run`'s embedded SMTP server, and the messages it kept for /admin/mail.

aiosmtpd receives every message into a Maildir (MAIL_KEEP_DIR); the admin page reads it
back. Production sets MAIL_URL to a real server and keeps nothing here.
"""

from __future__ import annotations

import mailbox
import socket
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask import current_app


@dataclass
class KeptMessage:
    """One received message as the admin page shows it."""

    key: str
    subject: str
    sender: str
    recipient: str
    date: str
    text: str
    html: str
    headers: list[tuple[str, str]]


def keep_dir() -> Path | None:
    """Return the Maildir the embedded server writes to, if this app has one."""
    path = current_app.config.get("MAIL_KEEP_DIR")
    return Path(path) if path else None


def read_messages(limit: int = 100) -> list[KeptMessage]:
    """Return the newest kept messages first."""
    path = keep_dir()
    if path is None or not path.exists():
        return []
    box = mailbox.Maildir(path, create=False)
    messages = []
    for key in box.keys():
        parsed = message_from_bytes(box.get_bytes(key), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        messages.append(_kept(key, parsed))
    messages.sort(key=lambda m: m.date, reverse=True)
    return messages[:limit]


def _kept(key: str, message: EmailMessage) -> KeptMessage:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return KeptMessage(
        key=key,
        subject=str(message.get("Subject", "")),
        sender=str(message.get("From", "")),
        recipient=str(message.get("To", "")),
        date=str(message.get("X-Received-At", message.get("Date", ""))),
        text=text.get_content() if text is not None else "",
        html=html.get_content() if html is not None else "",
        headers=[(name, str(value)) for name, value in message.items()],
    )


class KeepingHandler:
    """An aiosmtpd handler that files every message into a Maildir."""

    def __init__(self, path: Path) -> None:
        self.box = mailbox.Maildir(path, create=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from datetime import UTC, datetime

        stamp = datetime.now(UTC).isoformat(timespec="microseconds")
        raw = f"X-Received-At: {stamp}\r\n".encode() + envelope.original_content
        self.box.add(raw)
        return "250 kept"


def free_port() -> int:
    """Return a TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_embedded(path: Path) -> tuple[Any, str]:
    """Start the embedded SMTP server filing into path; return it and its MAIL_URL."""
    from aiosmtpd.controller import Controller

    port = free_port()
    controller = Controller(KeepingHandler(path), hostname="127.0.0.1", port=port)
    controller.start()
    return controller, f"smtp://127.0.0.1:{port}"
