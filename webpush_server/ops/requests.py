"""Request ids on every request and response; the access log when logs are JSON."""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request
from werkzeug.wrappers import Response

from .. import logs

access_log = logging.getLogger("webpush_server.access")
HEADER = "X-Request-ID"


def init_app(app: Flask) -> None:
    """Give each request an id (X-Request-ID when valid), echo it, log the request."""
    if app.config.get("LOG_FORMAT"):
        logs.configure(app.config["LOG_FORMAT"])

    def take_request_id() -> None:
        request_id = logs.valid_request_id(request.headers.get(HEADER)) or logs.new_request_id()
        g.request_id = request_id
        g.request_started = time.perf_counter()
        g.request_id_token = logs.request_id_var.set(request_id)

    # First of all before_request hooks: a request another hook answers (a CSRF refusal, a
    # WebSocket guard) still gets its id.
    app.before_request_funcs.setdefault(None, []).insert(0, take_request_id)

    @app.after_request
    def give_request_id(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[HEADER] = request_id
        # Gunicorn's access log has no request id; JSON logs carry their own access line.
        if app.config.get("LOG_FORMAT") == "json" and "request_started" in g:
            access_log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 1),
                    "remote_addr": request.remote_addr,
                },
            )
        return response

    @app.teardown_request
    def forget_request_id(_error: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            logs.request_id_var.reset(token)
