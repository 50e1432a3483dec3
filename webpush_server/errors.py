"""Domain refusals, and the one place each kind of caller turns them into answers.

Services raise ``Refused`` (``Invalid``, ``NotFound``, ``Conflict``, ...), never an HTTP
status. The JSON API maps them here to ``{"error": {"code", "message", "field"}}`` with a
status; pages flash the message and go back (``refused_to_page``); the CLI prints it and exits
1 (``refused_to_cli``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask, flash, jsonify, make_response, redirect, render_template, request
from flask.wrappers import Request as FlaskRequest
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response


class Refused(Exception):
    """A request the domain will not carry out; the message says why, field names the input."""

    code = "refused"

    def __init__(
        self,
        field: str | None,
        message: str,
        code: str | None = None,
        *,
        fields: list[dict[str, str | None]] | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        # Every input at fault ({"field", "message"}), when a validation found several;
        # field and message stay the first of them for older clients.
        self.fields = fields
        if code is not None:
            self.code = code


class Invalid(Refused):
    """The input is malformed or out of range."""

    code = "invalid"


class InvalidFields(Invalid):
    """Several fields are invalid at once: errors maps each field to its message.

    The JSON API answers with the first (field and message, as for Invalid); a form shows
    every one beside its field.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        fields: list[dict[str, str | None]] = [
            {"field": name, "message": text} for name, text in errors.items()
        ]
        super().__init__(field, message, fields=fields)
        self.errors = dict(errors)


class NotFound(Refused):
    """The thing named does not exist (or is not the caller's to see)."""

    code = "not_found"


class Forbidden(Refused):
    """The caller may not do this."""

    code = "forbidden"


class Conflict(Refused):
    """The request clashes with the current state (already held, closed, exists)."""

    code = "conflict"


class Unprocessable(Refused):
    """Well-formed, but it contradicts what the caller sent before (an idempotency key reused)."""

    code = "unprocessable"


class Unavailable(Refused):
    """The server cannot do this right now (not configured, a dependency is down)."""

    code = "unavailable"


class RateLimited(Refused):
    """The caller tried too often; retry_after says in how many seconds to try again."""

    code = "rate_limited"

    def __init__(self, field: str | None, message: str, *, retry_after: int) -> None:
        super().__init__(field, message)
        self.retry_after = max(1, int(retry_after))


# The only table of HTTP statuses for domain refusals.
HTTP_STATUS: dict[type[Refused], int] = {
    Invalid: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    Unprocessable: 422,
    Unavailable: 503,
}


def http_status(error: Refused) -> int:
    """Return the HTTP status of a refusal (its nearest kind in HTTP_STATUS)."""
    for kind in type(error).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    return 400


def whole_number(value: object, field: str, low: int, high: int, *, label: object = None) -> int:
    """Return value as an int from low to high (JSON numbers and form strings alike).

    label names the field in the message as its form does ("Goal (won)", a lazy gettext
    string: it speaks the request's language); else field.
    """
    # ASCII digits only, and no more than the bound has: "²" and "１０００" pass isdigit() but
    # not int(), and a 5,000-digit string would make int() itself refuse (and cost time).
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= len(str(high)):
            value = int(text)
    # bool is an int in Python; counts and money are never true/false or fractions.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        bounds = {"low": f"{low:,}", "high": f"{high:,}"}
        message = gettext(
            "%(label)s must be a whole number from %(low)s to %(high)s.",
            label=label or field,
            **bounds,
        )
        raise Invalid(field, message)
    return value


# Row ids are INTEGER columns: 4 bytes on PostgreSQL. A larger id names no row, and
# PostgreSQL refuses to compare one with an INTEGER ("integer out of range": a 500), so it is
# refused here, the same on both databases.
MAX_ID = 2**31 - 1


def as_id(value: object, lowest: int = 1) -> int | None:
    """Return value as a row id (an int from lowest to MAX_ID, or such a string), else None.

    A keyset cursor ("replay what came after id N") passes lowest=0.
    """
    if isinstance(value, str):
        text = value.strip()
        # ASCII digits only: "²" passes isdigit() but not int().
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else None
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= MAX_ID:
        return None
    return value


def storable_text(text: str) -> bool:
    """Tell whether text can be stored: valid Unicode (no lone surrogates) without NUL.

    json.loads turns ``"\\ud800"`` into a lone surrogate, which neither SQLite nor PostgreSQL
    can encode, and PostgreSQL refuses NUL in text.
    """
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_field(data: object) -> str | None:
    """Return the top-level field of a parsed JSON value holding unstorable text, else None.

    The empty string names the body itself (a bare string, or a list). Iterative, so depth
    costs no stack.
    """
    pending: list[tuple[str, object]] = [("", data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            if not storable_text(value):
                return where
        elif isinstance(value, dict):
            for key, item in value.items():
                top = where or key
                if not storable_text(key):
                    return top if storable_text(top) else ""
                pending.append((top, item))
        elif isinstance(value, list):
            pending.extend((where, item) for item in value)
    return None


class Request(FlaskRequest):
    """Flask's request, whose JSON body is refused (Invalid) when it cannot be stored.

    A body nested too deeply makes json.loads raise RecursionError, which get_json(silent=True)
    does not catch; text with lone surrogates or NUL would only fail later, in the database.
    Both are the client's mistake: a 400 that names the field, before any view runs.
    """

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        try:
            data = super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            raise Invalid(None, gettext("The JSON body is nested too deeply.")) from None
        where = unstorable_field(data)
        if where is not None:
            raise Invalid(
                where or None,
                gettext(
                    "%(field)s holds characters that are not valid text (a lone surrogate or NUL).",
                    field=where or gettext("The body"),
                ),
            )
        return data


class IdConverter(BaseConverter):
    """``<int:name>`` for row ids: matches any digits, and refuses those no row can have.

    Werkzeug's own converter matches Unicode digits and hands them to int() ("²" raises,
    "１０００" is 1000) and has no upper bound (2^63 overflows the database). This one passes
    the text on when it is not an id, and refuse_bad_path_ids turns that into a 404 naming
    the parameter.
    """

    regex = r"\d+"
    part_isolating = True

    def to_python(self, value: str) -> int | str:
        # 0 is a number other blueprints use (rq-dashboard's instance 0); no row has it, so
        # a lookup by it is refused as not found like any other missing row.
        ident = as_id(value, lowest=0)
        return value if ident is None else ident

    def to_url(self, value: Any) -> str:
        return str(value)


def refuse_bad_path_ids(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Refuse a URL whose id parameter (IdConverter) is no row id: NotFound naming it."""
    rule = request.url_rule
    if rule is None or not values:
        return
    for name, converter in rule._converters.items():
        value = values.get(name)
        # Our own ids start at 1; another blueprint's numbers (rq-dashboard's instance 0) may not.
        lowest = 1 if name.endswith("_id") else 0
        if isinstance(converter, IdConverter) and (not isinstance(value, int) or value < lowest):
            raise NotFound(name, f"No such {name.removesuffix('_id').replace('_', ' ')}.")


def refuse_unstorable_input() -> None:
    """Refuse query arguments and form fields holding NUL (PostgreSQL cannot store it)."""
    for source in (request.args, request.form):
        for key, value in source.items(multi=True):
            if not (storable_text(key) and storable_text(value)):
                field = key if storable_text(key) else None
                raise Invalid(
                    field,
                    gettext(
                        "%(field)s holds characters that are not text.",
                        field=field or gettext("A field"),
                    ),
                )


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    fields: list[dict[str, str | None]] | None = None,
) -> tuple[Response, int]:
    """Return a JSON error response; `fields` lists every input at fault when there are several."""
    error: dict[str, object] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    if fields:
        error["fields"] = fields
    return jsonify(error=error), status


def refusal_response(error: Refused) -> tuple[Response, int]:
    """Return the JSON answer to a refusal."""
    return error_response(http_status(error), error.code, error.message, error.field, error.fields)


def wants_json() -> bool:
    """Tell whether this request should get JSON errors rather than a page."""
    # /i18n/: the JS catalog, read by scripts and the service worker, not by people.
    return request.path.startswith(("/api/", "/i18n/")) or request.path == "/ws"


def safe_back(target: str | None, default: str) -> str:
    """Return target if it is a path on this site, else default (no open redirects).

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
    ``/\t/evil.example`` or ``/\\evil.example`` would leave the site: any such character refuses.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if any(ch == "\\" or ch.isspace() or not ch.isprintable() for ch in target):
        return default
    return target


def _referrer_path() -> str | None:
    """Return the path of the page this request came from, when it is one of ours."""
    parts = urlsplit(request.referrer or "")
    if parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def refused_to_page(error: Refused, back: str) -> Response | tuple[str, int]:
    """Flash a refusal's message and go back to the page the action came from.

    Nothing the refused action wrote is kept. When what is missing is the page's own subject
    (the id in its URL), there is no page to go back to: that is a 404 page.
    """
    from .extensions import db

    db.session.rollback()
    if isinstance(error, NotFound) and error.field in (request.view_args or {}):
        return render_template("errors/404.html", message=error.message), 404
    flash(error.message, "error")
    return redirect(back)


@contextmanager
def refused_to_cli() -> Iterator[None]:
    """Turn a refusal inside the block into a CLI error: the message, exit status 1."""
    try:
        yield
    except Refused as error:
        raise click.ClickException(error.message) from error


def rate_limited_response(error: RateLimited) -> Any:
    """Return the 429 answer: JSON under /api, a friendly page elsewhere; Retry-After on both."""
    if wants_json():
        response, status = refusal_response(error)
    else:
        response = make_response(
            render_template("errors/429.html", message=error.message, wait=error.retry_after)
        )
        status = 429
    response.status_code = status
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def _limiter_retry_after() -> int:
    """Return the seconds until Flask-Limiter's exceeded window resets."""
    from .extensions import limiter

    current = limiter.current_limit
    return math.ceil(current.reset_at - time.time()) if current is not None else 60


def init_app(app: Flask) -> None:
    """Refuse hostile input as 4xx; render errors as JSON under /api and as pages elsewhere."""
    app.request_class = Request
    app.url_map.converters["int"] = IdConverter
    app.url_value_preprocessor(refuse_bad_path_ids)
    app.before_request(refuse_unstorable_input)

    @app.errorhandler(Refused)
    def handle_refused(error: Refused) -> Any:
        if isinstance(error, RateLimited):
            return rate_limited_response(error)
        if wants_json():
            return refusal_response(error)
        status = http_status(error)
        if status in (403, 404):
            template = f"errors/{status}.html"
            return render_template(template, message=error.message), status
        # A refused form post from one of our pages: say why on the page it came from.
        return refused_to_page(error, safe_back(_referrer_path(), "/"))

    @app.errorhandler(CSRFError)
    def handle_csrf_error(error: CSRFError) -> Any:
        if wants_json():
            return error_response(400, "csrf", error.description, "csrf_token")
        return render_template("errors/403.html", message=error.description), 400

    @app.errorhandler(429)
    def handle_too_many(error: HTTPException) -> Any:
        # Flask-Limiter's RateLimitExceeded: the same answer as our own RateLimited.
        message = gettext("Too many requests. Wait a moment before trying again.")
        return rate_limited_response(RateLimited(None, message, retry_after=_limiter_retry_after()))

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> Any:
        code = (error.name or "error").lower().replace(" ", "_")
        if wants_json():
            return error_response(error.code or 500, code, error.description or error.name)
        template = {403: "errors/403.html", 404: "errors/404.html"}.get(
            error.code or 500, "errors/500.html"
        )
        return render_template(template, message=error.description), error.code

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Any:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_response(500, "internal", gettext("Something went wrong on our side."))
        return render_template("errors/500.html", message=gettext("Something went wrong.")), 500
