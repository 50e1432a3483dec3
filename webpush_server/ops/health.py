"""GET /healthz (the process is up) and GET /readyz (the database and Redis answer).

A load balancer or the platform's health check polls these: /healthz touches nothing, so a
slow database never gets a healthy process restarted; /readyz bounds each check to
READY_TIMEOUT_SECONDS so the probe itself never hangs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Literal

from flask import Blueprint, Flask, current_app, jsonify
from pydantic import BaseModel
from redis import Redis
from sqlalchemy import text

from ..apidoc import documented
from ..extensions import db
from ..redis_server import resolve_url

bp = Blueprint("health", __name__)

READY_TIMEOUT_SECONDS = 1.0
# Checks run here so that a database connect stuck in the kernel cannot hold the request past
# its timeout; two threads, one per dependency, shared by the process.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


class Health(BaseModel):
    """The process serves requests."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether the database and Redis answered, and what each check said."""

    status: Literal["ok", "down"]
    down: list[Literal["database", "redis"]]
    checks: dict[str, str]


@bp.get("/healthz")
@documented("Liveness: the process is up", responses={200: Health}, auth="none", tags=("ops",))
def healthz():
    """Answer 200 while the process serves requests."""
    return jsonify(status="ok")


@bp.get("/readyz")
@documented(
    "Readiness: the database and Redis answer",
    responses={200: Readiness, 503: Readiness},
    auth="none",
    tags=("ops",),
)
def readyz():
    """Answer 200 when the database and Redis answer, else 503 naming what is down."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    timeout = app.config.get("READY_TIMEOUT_SECONDS", READY_TIMEOUT_SECONDS)
    futures = {
        "database": _pool.submit(_check_database, app),
        "redis": _pool.submit(_check_redis, app, timeout),
    }
    checks: dict[str, str] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            checks[name] = "ok"
        except FutureTimeout:
            checks[name] = f"no answer within {timeout:g} s"
        except Exception as exc:
            checks[name] = f"{type(exc).__name__}: {exc}"[:300]
    down = sorted(name for name, state in checks.items() if state != "ok")
    status = 503 if down else 200
    return jsonify(status="down" if down else "ok", down=down, checks=checks), status


def _check_database(app: Flask) -> None:
    with app.app_context():
        try:
            db.session.execute(text("SELECT 1"))
        finally:
            db.session.remove()


def _check_redis(app: Flask, timeout: float) -> None:
    # A connection of its own: the app's shared one has no connect timeout this short.
    conn = app.extensions.get("readyz_redis")
    if conn is None:
        url = resolve_url(app.config.get("REDIS_URL"), app.instance_path)
        conn = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        app.extensions["readyz_redis"] = conn
    conn.ping()
