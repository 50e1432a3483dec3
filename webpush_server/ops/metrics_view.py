"""GET /metrics: Prometheus text for admins, or for `Authorization: Bearer $METRICS_TOKEN`."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, current_app, request
from flask_login import current_user
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .. import metrics
from ..jobs.queues import QUEUES, queue

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)


class QueueDepths(Collector):
    """Jobs waiting per RQ queue, read from Redis at scrape time (every process agrees)."""

    def collect(self):
        depth = GaugeMetricFamily(
            "webpush_queue_depth", "Jobs waiting in each RQ queue.", labels=["queue"]
        )
        try:
            for name in QUEUES:
                depth.add_metric([name], queue(name).count)
        except Exception:
            # A scrape without queue depths beats no scrape: the rest still tells a story.
            log.warning("could not read queue depths", exc_info=True)
        yield depth


@bp.get("/metrics")
def metrics_text():
    """Serve every metric of this host; 401 without credentials, 403 with the wrong ones."""
    refusal = _refusal()
    if refusal is not None:
        return refusal
    body = metrics.exposition(QueueDepths())
    return Response(body, mimetype=metrics.CONTENT_TYPE.split(";")[0], content_type=None)


def _refusal() -> Response | None:
    header = request.headers.get("Authorization", "")
    token = current_app.config.get("METRICS_TOKEN")
    if header.startswith("Bearer "):
        given = header[len("Bearer ") :].strip()
        if token and hmac.compare_digest(given.encode(), str(token).encode()):
            return None
        return Response("invalid metrics token\n", 403, mimetype="text/plain")
    if current_user.is_authenticated:
        if current_user.has_role("admin"):
            return None
        return Response("admins only\n", 403, mimetype="text/plain")
    return Response(
        "log in as an admin or send Authorization: Bearer $METRICS_TOKEN\n",
        401,
        mimetype="text/plain",
        headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
    )
