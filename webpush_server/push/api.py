"""The subscription REST API."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask_babel import gettext
from flask_login import current_user, login_required

from ..apidoc import documented
from ..config import ConfigError
from ..errors import Unavailable
from ..extensions import configured_limit, limiter
from . import host_policy, services, signer
from .schemas import DeviceList, EndpointIn, SubscriptionId, SubscriptionIn, VapidKey

bp = Blueprint("push_api", __name__, url_prefix="/api/push")
# Subscribing and unsubscribing share one budget: each write costs a row and a host check.
subscription_writes = limiter.shared_limit(
    configured_limit("RATELIMIT_SUBSCRIPTION_WRITES"), scope="subscription-writes"
)


@bp.get("/vapid-public-key")
@documented(
    "The VAPID public key browsers subscribe with",
    responses={200: VapidKey},
    auth="none",
    tags=("push",),
    errors=(503,),
)
def vapid_public_key():
    """Return the applicationServerKey browsers subscribe with."""
    try:
        key = signer().public_key
    except ConfigError as exc:
        current_app.logger.error("%s", exc)
        raise Unavailable(
            None, gettext("Push is not configured on this server."), "push_not_configured"
        ) from exc
    return jsonify(publicKey=key)


@bp.post("/subscriptions")
@documented(
    "Store this device's push subscription",
    request=SubscriptionIn,
    responses={201: SubscriptionId, 200: SubscriptionId},
    tags=("push",),
)
@login_required
@subscription_writes
def subscribe():
    """Store the caller's push subscription for this device (upsert by endpoint)."""
    sub = services.parse_subscription(request.get_json(silent=True), host_policy())
    row, created = services.save_subscription(
        current_user.id,
        sub,
        request.headers.get("User-Agent", ""),
        current_app.config["MAX_SUBSCRIPTIONS_PER_USER"],
    )
    return jsonify(id=row.id), 201 if created else 200


@bp.get("/subscriptions")
@documented("The caller's devices", responses={200: DeviceList}, tags=("push",))
@login_required
def list_subscriptions():
    """List the caller's devices and their health."""
    rows = services.list_subscriptions(current_user.id)
    return jsonify(subscriptions=[row.to_json() for row in rows])


@bp.delete("/subscriptions")
@documented(
    "Forget a device (204 also when unknown)",
    request=EndpointIn,
    responses={204: None},
    tags=("push",),
)
@login_required
@subscription_writes
def unsubscribe():
    """Forget the caller's device with this endpoint."""
    data = request.get_json(silent=True)
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    services.remove_subscription(current_user.id, endpoint)
    return "", 204
