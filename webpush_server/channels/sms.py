"""SMS through the Twilio Messages API, and E.164 numbers with their 6-digit verification.

POST {TWILIO_API_BASE}/2010-04-01/Accounts/{sid}/Messages.json with form fields To, From,
Body and basic auth. A message stays within 2 segments (GSM-7: 306 characters, else UCS-2:
134); longer text is cut and ends with the link. Answers map onto the outbox policy: 2xx
sent; 21211/21614 (not a number, not a mobile) failed and the number marked invalid;
429/20429 retried after Retry-After; 5xx and no answer retried with backoff; other 4xx are
our configuration. Under `make run` (no TWILIO_ACCOUNT_SID) messages are kept for
/admin/mail instead.
"""

from __future__ import annotations

import base64
import json
import mailbox
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage

import phonenumbers
from flask import current_app, render_template
from flask_babel import gettext
from jinja2 import TemplateNotFound

from ..errors import Invalid
from ..jobs.claim import Claimed
from ..push.policy import Outcome, parse_retry_after
from ..push.sender import PushResult
from .tokens import public_url

INVALID_NUMBER_CODES = {21211, 21614}
RATE_LIMIT_CODES = {20429}
# GSM 03.38: the basic set (one septet each) and the extension set (two: escape + char).
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€\f")
MAX_SEGMENTS = 2
# The verification code's SMS (channels/services.py): its body is the whole text, no link.
PHONE_CODE_KIND = "phone_code"


def normalize(number: object, region: str = "KR") -> str:
    """Return number in E.164 (+821012345678), or raise Invalid naming `number`."""
    if not isinstance(number, str) or not 3 <= len(number) <= 32:
        raise Invalid("number", gettext("Mobile number: a phone number such as +82 10-1234-5678."))
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException as error:
        raise Invalid("number", gettext("Mobile number: not a phone number.")) from error
    if not phonenumbers.is_valid_number(parsed):
        raise Invalid("number", gettext("Mobile number: not a valid phone number."))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def units(text: str) -> tuple[int, bool]:
    """Return the length of text in its encoding's units, and whether it is GSM-7."""
    if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text):
        return sum(2 if ch in GSM_EXTENDED else 1 for ch in text), True
    # UCS-2 counts UTF-16 code units: a character beyond the BMP takes two.
    return len(text.encode("utf-16-le")) // 2, False


def capacity(gsm: bool, segments: int = MAX_SEGMENTS) -> int:
    """Return how many units fit in segments (a multi-part message loses room to its header)."""
    single, part = (160, 153) if gsm else (70, 67)
    return single if segments == 1 else part * segments


def fit(text: str, link: str) -> str:
    """Return text and link within MAX_SEGMENTS; cut text (never the link) when too long."""
    whole = f"{text} {link}"
    length, gsm = units(whole)
    if length <= capacity(gsm):
        return whole
    # "..." keeps a GSM-7 text in GSM-7 (306 characters); "…" would make it UCS-2 (134).
    tail = f"... {link}" if units(text)[1] else f"… {link}"
    room = capacity(units(text + tail)[1])
    cut = text
    while cut and units(cut + tail)[0] > room:
        cut = cut[:-1]
    return cut.rstrip() + tail


def body_of(item: Claimed) -> str:
    """Return an SMS Body for a delivery, from its kind's template (sms/<kind>.txt)."""
    if item.kind == PHONE_CODE_KIND:
        return item.body
    link = f"{public_url()}/n/{item.notification_id}"
    context = {"item": item}
    try:
        text = render_template(f"sms/{item.kind}.txt", **context)
    except TemplateNotFound:
        text = render_template("sms/notice.txt", **context)
    return fit(" ".join(text.split()), link)


def configured() -> bool:
    """Tell whether SMS goes to a Twilio API (else, under `make run`, it is kept)."""
    config = current_app.config
    return bool(config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_FROM"))


def available() -> bool:
    """Tell whether SMS can be sent at all: a Twilio API, or `make run`'s keeping."""
    return configured() or bool(current_app.config.get("MAIL_KEEP_DIR"))


def send_message(to: str, body: str) -> PushResult:
    """Send one SMS (key 0); never raises for an answer or a network failure."""
    return _send_one(0, to, body)


def send_batch(items: Sequence[Claimed], now: datetime) -> list[PushResult]:
    """Send SMS deliveries one request each; return one result per item."""
    results = []
    for item in items:
        try:
            body = body_of(item)
        except Exception as exc:
            results.append(PushResult(item.id, Outcome.ERROR, error=f"{type(exc).__name__}: {exc}"))
            continue
        results.append(_send_one(item.id, item.address or "", body))
    return results


def _send_one(key: int, to: str, body: str) -> PushResult:
    config = current_app.config
    if not configured():
        _keep(to, body)
        return PushResult(key, Outcome.SENT, status=201)
    sid = config["TWILIO_ACCOUNT_SID"]
    base = (config.get("TWILIO_API_BASE") or "https://api.twilio.com").rstrip("/")
    url = f"{base}/2010-04-01/Accounts/{urllib.parse.quote(sid)}/Messages.json"
    data = urllib.parse.urlencode({"To": to, "From": config["TWILIO_FROM"], "Body": body})
    auth = base64.b64encode(f"{sid}:{config.get('TWILIO_AUTH_TOKEN') or ''}".encode()).decode()
    request = urllib.request.Request(
        url,
        data=data.encode(),
        method="POST",
        headers={
            "Authorization": f"Basic {auth}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=config["MAIL_TIMEOUT_SECONDS"]) as answer:
            answer.read()
            return PushResult(
                key, Outcome.SENT, status=answer.status, seconds=time.perf_counter() - started
            )
    except urllib.error.HTTPError as error:
        return _refused(key, error, time.perf_counter() - started)
    except OSError as error:
        return PushResult(key, Outcome.TRANSIENT, error=f"Twilio: {type(error).__name__}: {error}")


def _refused(key: int, error: urllib.error.HTTPError, seconds: float) -> PushResult:
    try:
        answer = json.loads(error.read() or b"{}")
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    code = answer.get("code")
    text = f"Twilio {error.code} {code or ''} {answer.get('message', '')}".strip()
    status = error.code
    if code in INVALID_NUMBER_CODES:
        return PushResult(key, Outcome.BOUNCED, status=status, error=text, seconds=seconds)
    if status == 429 or code in RATE_LIMIT_CODES:
        retry = parse_retry_after(error.headers.get("Retry-After"))
        return PushResult(
            key, Outcome.RATE_LIMITED, status=status, error=text, retry_after=retry, seconds=seconds
        )
    if status >= 500:
        return PushResult(key, Outcome.TRANSIENT, status=status, error=text, seconds=seconds)
    return PushResult(key, Outcome.CONFIG_ERROR, status=status, error=text, seconds=seconds)


def _keep(to: str, body: str) -> None:
    """Keep an SMS in `make run`'s Maildir, where /admin/mail shows it beside the e-mails."""
    path = current_app.config.get("MAIL_KEEP_DIR")
    if not path:
        raise RuntimeError("SMS is not configured: set TWILIO_ACCOUNT_SID and TWILIO_FROM")
    message = EmailMessage()
    message["Subject"] = f"SMS to {to}"
    message["From"] = current_app.config.get("TWILIO_FROM") or "SMS"
    message["To"] = to
    message["X-Received-At"] = datetime.now(UTC).isoformat(timespec="microseconds")
    message.set_content(body)
    mailbox.Maildir(path, create=True).add(message)
