"""/admin/rq: rq-dashboard (a Flask blueprint from PyPI), for admins only, assets served locally.

rq-dashboard writes its page scripts inline; templates/rq_dashboard/base.html overrides its
base so that each page loads its script from the same URL with ``rq_script=1`` instead,
rendered here as JavaScript: the site's Content-Security-Policy allows only scripts from
'self'. Its POSTs (requeue, delete, empty) carry our CSRF token.
"""

from __future__ import annotations

import re

from flask import Flask, abort, current_app, g, request
from rq.exceptions import NoSuchJobError
from werkzeug.wrappers import Response

from ..jobs.queues import connection
from ..redis_server import resolve_url

URL_PREFIX = "/admin/rq"
# What RQ accepts as a job id, and the names our queues have.
_RQ_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def init_app(app: Flask, admins_only) -> None:
    """Mount rq-dashboard under /admin/rq behind admins_only."""
    import rq_dashboard

    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)

    @app.before_request
    def guard_rq_dashboard():
        if request.blueprint != "rq_dashboard":
            return None
        refusal = admins_only()
        if refusal is not None:
            return refusal
        # rq-dashboard hands ids from the URL straight to RQ, which raises on a malformed
        # one (a 500): a name RQ could never have made is no such job or queue.
        for name, value in (request.view_args or {}).items():
            if name in ("job_id", "queue_name") and not _RQ_NAME.fullmatch(str(value)):
                abort(404)
        _connect()
        g.rq_script_only = request.args.get("rq_script") == "1"
        return None

    @app.errorhandler(NoSuchJobError)
    def no_such_job(_error: NoSuchJobError):
        abort(404)

    @app.context_processor
    def rq_script_flag() -> dict:
        return {"rq_script_only": g.get("rq_script_only", False)}

    @app.after_request
    def serve_rq_script(response: Response) -> Response:
        if g.get("rq_script_only") and response.mimetype == "text/html":
            response.mimetype = "text/javascript"
        return response


def _connect() -> None:
    """Give rq-dashboard our Redis (it reads the URL list and app.redis_conn)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config.get("RQ_DASHBOARD_REDIS_URL"):
        app.config["RQ_DASHBOARD_REDIS_URL"] = [
            resolve_url(app.config.get("REDIS_URL"), app.instance_path)
        ]
    if getattr(app, "redis_conn", None) is None:
        app.redis_conn = connection(app)
