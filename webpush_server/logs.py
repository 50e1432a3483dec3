"""Log lines that say which request they belong to: request ids, and JSON when asked.

Every process (web, worker, scheduler) logs through the root logger. With LOG_FORMAT=json
each record becomes one JSON object per line: time, level, logger, message, request_id,
user_id, and delivery_ids where a record carries them (``extra={"delivery_ids": [...]}``).
The request id comes from the request (``X-Request-ID`` or a new one), travels in the meta
of the jobs that request enqueued, and is set again while the worker runs them.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

MAX_REQUEST_ID = 200

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[int | None] = ContextVar("user_id", default=None)

# Attributes every LogRecord has; anything else was passed in `extra` and is kept.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def valid_request_id(value: str | None) -> str | None:
    """Return value when it can be a request id (printable ASCII, 1 to 200 characters)."""
    if not value or len(value) > MAX_REQUEST_ID:
        return None
    if not (value.isascii() and value.isprintable()) or value != value.strip():
        return None
    return value


def new_request_id() -> str:
    """Return a fresh request id."""
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """Return the request id of the request or job this code runs for, if any."""
    return request_id_var.get()


class ContextFilter(logging.Filter):
    """Give every record the request_id and user_id of the request or job it belongs to."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        if getattr(record, "user_id", None) is None:
            record.user_id = user_id_var.get() or _request_user_id()
        return True


def _request_user_id() -> int | None:
    """Return the logged-in user's id if this request has already loaded the user."""
    from flask import g, has_request_context

    # Only a user Flask-Login has loaded: logging must never cost a query (or recurse).
    if not has_request_context():
        return None
    user = g.get("_login_user")
    return getattr(user, "id", None) if getattr(user, "is_authenticated", False) else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "user_id": getattr(record, "user_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def make_handler(log_format: str, stream: Any = None) -> logging.Handler:
    """Return a stream handler writing log_format ("json" or "text") with the context filter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    return handler


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Make the root logger write log_format ("json" or "text"); calling it again replaces it."""
    if log_format not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be json or text, not {log_format!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "webpush_log", False):
            root.removeHandler(handler)
    handler = make_handler(log_format)
    handler.webpush_log = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
