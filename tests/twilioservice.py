"""A local stand-in for the Twilio Messages API: form bodies, basic auth, JSON and error codes.

POST /2010-04-01/Accounts/{sid}/Messages.json with To, From, Body answers 201 and keeps
the message; answer(number, status, code, retry_after) makes messages to that number get
Twilio's error JSON instead (21211 invalid number, 20429 too many requests, a 5xx…), for
the next `times` messages only when given (then 201 again).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tests.helpers import free_port

SID = "AC" + "0" * 32
TOKEN = "test-auth-token"
FROM = "+15005550006"


@dataclass
class Sms:
    to: str
    sender: str
    body: str


class TwilioStandIn:
    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Sms] = []
        self.answers: dict[str, tuple[int, int | None, int | None]] = {}
        self.remaining: dict[str, int] = {}  # scripted answers left, for answer(times=n)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> dict[str, Any]:
        """The app settings that point SMS here."""
        return {
            "TWILIO_ACCOUNT_SID": SID,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_FROM": FROM,
            "TWILIO_API_BASE": self.base,
        }

    def __enter__(self) -> TwilioStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(
        self, number: str, status: int, code: int | None = None, retry_after=None, times=None
    ):
        with self.lock:
            self.answers[number] = (status, code, retry_after)
            self.remaining.pop(number, None)
            if times is not None:
                self.remaining[number] = times

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
            self.answers.clear()
            self.remaining.clear()

    def to(self, number: str) -> list[Sms]:
        with self.lock:
            return [m for m in self.messages if m.to == number]

    def wait_for_count(self, n: int, timeout: float = 10) -> list[Sms]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} of {n} SMS arrived")
            time.sleep(0.02)

    def _handler(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                if self.path != f"/2010-04-01/Accounts/{SID}/Messages.json":
                    return self._json(404, {"code": 20404, "message": "not found"})
                expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._json(401, {"code": 20003, "message": "authenticate"})
                if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                    return self._json(400, {"code": 20001, "message": "form body expected"})
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if not {"To", "From", "Body"} <= set(form):
                    return self._json(400, {"code": 21604, "message": "To, From, Body required"})
                with stand_in.lock:
                    scripted = stand_in.answers.get(form["To"])
                    left = stand_in.remaining.get(form["To"])
                    if left is not None:
                        stand_in.remaining[form["To"]] = left - 1
                        if left <= 1:
                            del stand_in.answers[form["To"]], stand_in.remaining[form["To"]]
                if scripted is not None:
                    status, code, retry_after = scripted
                    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                    body = {"code": code, "message": "scripted", "status": status}
                    return self._json(status, body, headers)
                with stand_in.lock:
                    stand_in.messages.append(Sms(form["To"], form["From"], form["Body"]))
                return self._json(
                    201, {"sid": "SM" + "1" * 32, "status": "queued", "to": form["To"]}
                )

        return Handler
