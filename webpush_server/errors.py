"""One shape for API errors: {"error": {"code", "message", "field"}}."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


class APIError(Exception):
    """An error a client can act on; raised by views and services, rendered as JSON."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class ValidationError(APIError):
    """Bad input: 400 naming the field at fault."""

    def __init__(self, field: str | None, message: str, code: str = "invalid") -> None:
        super().__init__(400, code, message, field)


def whole_number(value: object, field: str, low: int, high: int) -> int:
    """Return value as an int from low to high (JSON numbers and form strings alike)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    # bool is an int in Python; counts and money are never true/false or fractions.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValidationError(field, f"{field} must be a whole number from {low:,} to {high:,}.")
    return value


def error_response(status: int, code: str, message: str, field: str | None = None):
    """Return a JSON error response."""
    error = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return jsonify(error=error), status


def wants_json() -> bool:
    """Tell whether this request should get JSON errors rather than a page."""
    return request.path.startswith("/api/") or request.path == "/ws"


def register_error_handlers(app: Flask) -> None:
    """Render errors as JSON under /api and as pages elsewhere."""

    @app.errorhandler(APIError)
    def handle_api_error(error: APIError):
        return error_response(error.status, error.code, error.message, error.field)

    @app.errorhandler(CSRFError)
    def handle_csrf_error(error: CSRFError):
        if wants_json():
            return error_response(400, "csrf", error.description, "csrf_token")
        return render_template("errors/403.html", message=error.description), 400

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        if wants_json():
            return error_response(error.code or 500, code, error.description or error.name)
        template = {403: "errors/403.html", 404: "errors/404.html"}.get(
            error.code or 500, "errors/500.html"
        )
        return render_template(template, message=error.description), error.code

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_response(500, "internal", "Something went wrong on our side.")
        return render_template("errors/500.html", message="Something went wrong."), 500
