"""Send e-mail deliveries over SMTP and say what became of each, as push outcomes.

One connection per sub-batch. The answer decides (the outbox policy, push/policy.py): 2xx
sent; 4xx retried with backoff; a 5xx refusal of the recipient bounced (failed, counted
against the address); another 5xx failed; no answer (connection refused, dropped, timed
out) retried.
"""

from __future__ import annotations

import base64
import logging
import secrets
import smtplib
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from flask import current_app, render_template
from flask_babel import force_locale, gettext
from jinja2 import TemplateNotFound
from sqlalchemy import select

from ..auth.models import User
from ..extensions import db
from ..jobs.claim import Claimed
from ..notifications.kinds import KINDS
from ..notifications.text import language_of
from ..push.policy import Outcome
from ..push.sender import PushResult
from ..timeutil import in_zone, local_time
from .models import Preference
from .preferences import timezone_of
from .tokens import public_url, reset_token, unsubscribe_token

log = logging.getLogger(__name__)


def words() -> dict[str, str]:
    """Return the words around a notice in the current locale; its title and body are its own."""
    return {
        "greeting": gettext("Hello {name},"),
        "open": gettext("Open"),
        "sent": gettext("Sent {when}"),
        "why": gettext("You get these e-mails because e-mail is on for {label} notices."),
        "unsubscribe": gettext("Stop these e-mails"),
        "settings": gettext("Notification settings"),
        "reset_intro": gettext("Someone asked to reset the password of your account."),
        "reset_action": gettext("Set a new password"),
        "reset_expires": gettext("The link works once, within {minutes} minutes."),
        "reset_ignore": gettext("If it was not you, ignore this e-mail: your password stays."),
    }


@dataclass(frozen=True)
class MailServer:
    """Where and how to hand mail over: MAIL_URL parsed."""

    host: str
    port: int
    tls: bool  # smtps: TLS from the first byte
    starttls: bool
    user: str | None
    password: str | None

    @property
    def origin(self) -> str:
        return f"{'smtps' if self.tls else 'smtp'}://{self.host}:{self.port}"


def mail_server(url: str) -> MailServer:
    """Parse MAIL_URL: smtp://user:pass@host:port, smtps://…, ?starttls=1."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("MAIL_URL must look like smtp://user:pass@host:port or smtps://…")
    tls = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    return MailServer(
        host=parts.hostname,
        port=parts.port or (465 if tls else 25),
        tls=tls,
        starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


@dataclass(frozen=True)
class Reader:
    """Who an e-mail is for, as its text needs them."""

    name: str
    language: str
    zone: ZoneInfo


def _readers(user_ids: set[int]) -> dict[int, Reader]:
    rows = db.session.execute(
        select(User.id, User.name, Preference)
        .outerjoin(Preference, Preference.user_id == User.id)
        .where(User.id.in_(sorted(user_ids)))
    ).all()
    readers = {}
    for user_id, name, pref in rows:
        language = language_of(pref.language if pref is not None else None)
        readers[user_id] = Reader(name or "", language, ZoneInfo(timezone_of(pref)))
    db.session.rollback()
    return readers


def _template(kind: str, ext: str, **context) -> str:
    try:
        return render_template(f"email/{kind}.{ext}", **context)
    except TemplateNotFound:
        return render_template(f"email/notice.{ext}", **context)


def build_message(item: Claimed, reader: Reader, sender: str) -> bytes:
    """Return the multipart text + HTML message of one e-mail delivery, in its reader's language.

    A password reset speaks the language of the page that asked for it, when it was known.
    """
    asked = item.data.get("language") if item.data else None
    language = language_of(asked) if asked else reader.language
    with force_locale(language), in_zone(reader.zone):
        return _build(item, reader, sender, language)


def _build(item: Claimed, reader: Reader, sender: str, language: str) -> bytes:
    assert item.address and item.user_id is not None
    base = public_url()
    kind = KINDS.get(item.kind)
    link = f"{base}/n/{item.notification_id}"
    extra: dict[str, object] = {}
    if item.kind == "password_reset" and item.data and isinstance(item.data.get("reset_id"), int):
        link = f"{base}/account/password-reset/{reset_token(item.data['reset_id'])}"
        extra["minutes"] = current_app.config["PASSWORD_RESET_MINUTES"]
    # Every e-mail carries its kind's one-click link (CONTRACT); a password reset's link
    # changes nothing (services.KEPT_ON_REQUEST): resets must always be able to reach you.
    unsubscribe = f"{base}/unsubscribe/{unsubscribe_token(item.user_id, item.kind)}"
    context = {
        "item": item,
        "name": reader.name,
        "link": link,
        "unsubscribe_url": unsubscribe,
        "settings_url": f"{base}/settings/notifications",
        "when": local_time(item.created_at),
        "label": gettext(kind.label) if kind else item.kind,
        "t": words(),
        "base": base,
        "lang": language,
        **extra,
    }
    html = _template(item.kind, "html", **context)
    return _mime(
        [
            ("Subject", _header_text(item.title)),
            ("From", formataddr(parseaddr(sender), charset="utf-8")),
            ("To", formataddr((_one_line(reader.name), item.address), charset="utf-8")),
            ("Date", format_datetime(item.created_at)),
            ("Message-ID", message_id(item.id, sender)),
            ("X-Notification-Kind", item.kind),
            # Whole on one line (RFC 5322 allows 998): folding would turn the URL into an
            # encoded word no mail client can follow.
            ("List-Unsubscribe", f"<{unsubscribe}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("Content-Language", language),
        ],
        _template(item.kind, "txt", **context),
        html,
    )


def _one_line(text: str) -> str:
    """Return text without line breaks: a header value must not start a new header."""
    return " ".join(text.splitlines())


def _header_text(text: str) -> str:
    """Return a header value: ASCII as is, else RFC 2047 encoded words (UTF-8)."""
    text = _one_line(text)
    if text.isascii():
        return text
    return Header(text, "utf-8").encode(linesep="\r\n")


def _part(subtype: str, text: str) -> bytes:
    """Return one text part: 7bit when it can be, else base64 (UTF-8)."""
    lines = text.splitlines()
    if text.isascii() and all(len(line) < 990 for line in lines):
        encoding, body = "7bit", "\r\n".join(lines).encode() + b"\r\n"
    else:
        encoding = "base64"
        body = base64.encodebytes(text.encode()).replace(b"\n", b"\r\n")
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    return head.encode() + body


def _mime(headers: list[tuple[str, str]], text: str, html: str) -> bytes:
    """Return the multipart/alternative message as the bytes SMTP carries.

    Written directly rather than through email.message.EmailMessage: its header parsing and
    generator took most of the worker's CPU per e-mail (profile in bench/README.md).
    """
    boundary = f"=_{secrets.token_hex(12)}"
    top = "".join(f"{name}: {value}\r\n" for name, value in headers)
    top += f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n'
    sep = f"\r\n--{boundary}\r\n".encode()
    return (
        top.encode()
        + sep
        + _part("plain", text)
        + sep
        + _part("html", html)
        + f"\r\n--{boundary}--\r\n".encode()
    )


def message_id(delivery_id: int, sender: str) -> str:
    """Return the Message-ID of a delivery: the same on every retry of it."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "webpush-server.dev"
    return f"<delivery-{delivery_id}@{domain}>"


def _connect(server: MailServer, timeout: float) -> smtplib.SMTP:
    client: smtplib.SMTP
    if server.tls:
        client = smtplib.SMTP_SSL(
            server.host, server.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=timeout)
        if server.starttls:
            client.starttls(context=ssl.create_default_context())
    # One connection carries a sub-batch: without NODELAY each message's small writes wait on
    # delayed ACKs (a probe against aiosmtpd sent 1.6x more per second with it).
    if client.sock is not None:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if server.user:
        client.login(server.user, server.password or "")
    return client


def send_batch(items: Sequence[Claimed], now: datetime) -> list[PushResult]:
    """Send e-mail deliveries over one SMTP connection; return one result per item."""
    config = current_app.config
    server = mail_server(config["MAIL_URL"])
    sender = config["MAIL_FROM"]
    readers = _readers({item.user_id for item in items if item.user_id is not None})
    results: list[PushResult] = []
    messages: list[tuple[Claimed, bytes]] = []
    for item in items:
        try:
            messages.append((item, build_message(item, readers[item.user_id or 0], sender)))
        except Exception as exc:
            log.error("building the e-mail of delivery %s raised", item.id, exc_info=exc)
            results.append(PushResult(item.id, Outcome.ERROR, error=f"{type(exc).__name__}: {exc}"))
    if not messages:
        return results
    try:
        client = _connect(server, config["MAIL_TIMEOUT_SECONDS"])
    except (OSError, smtplib.SMTPException) as exc:
        error = f"mail server {server.origin}: {type(exc).__name__}: {exc}"
        code = getattr(exc, "smtp_code", None)
        outcome = (
            Outcome.CONFIG_ERROR
            if isinstance(exc, smtplib.SMTPAuthenticationError)
            else Outcome.TRANSIENT
        )
        return results + [
            PushResult(item.id, outcome, status=code, error=error) for item, _ in messages
        ]
    envelope_from = parseaddr(sender)[1]
    try:
        for index, (item, message) in enumerate(messages):
            started = time.perf_counter()
            try:
                address = item.address or ""
                options = [] if address.isascii() else ["SMTPUTF8"]
                client.sendmail(envelope_from, [address], message, mail_options=options)
                results.append(
                    PushResult(
                        item.id, Outcome.SENT, status=250, seconds=time.perf_counter() - started
                    )
                )
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                results.append(_refused(item.id, code, text, recipient=True))
                _reset(client)
            except smtplib.SMTPResponseException as exc:
                results.append(_refused(item.id, exc.smtp_code, exc.smtp_error, recipient=False))
                _reset(client)
            except (OSError, smtplib.SMTPServerDisconnected) as exc:
                # The connection is gone: this and the rest go round again.
                error = f"mail server {server.origin}: {type(exc).__name__}: {exc}"
                results.extend(
                    PushResult(other.id, Outcome.TRANSIENT, error=error)
                    for other, _ in messages[index:]
                )
                return results
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    return results


def _reset(client: smtplib.SMTP) -> None:
    """Start a fresh transaction on the connection after a refused one."""
    try:
        client.rset()
    except (OSError, smtplib.SMTPException):
        pass  # the next send finds the connection dead and retries the rest


def _refused(key: int, code: int, text: bytes | str, *, recipient: bool) -> PushResult:
    """Map an SMTP refusal onto the policy: 4xx retries; 5xx bounced (recipient) or failed."""
    message = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    error = f"SMTP {code} {message}"
    if 400 <= code < 500:
        return PushResult(key, Outcome.TRANSIENT, status=code, error=error)
    return PushResult(
        key, Outcome.BOUNCED if recipient else Outcome.ERROR, status=code, error=error
    )
