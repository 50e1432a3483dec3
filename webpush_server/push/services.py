"""Subscribe, unsubscribe and list devices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric import ec
from flask_babel import gettext
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, Invalid
from ..extensions import db
from .hosts import EndpointRefused, HostPolicy, canonical_endpoint
from .models import MAX_ENDPOINT_LENGTH, Subscription
from .vapid import b64url_decode

MAX_USER_AGENT = 512


@dataclass(frozen=True)
class SubscriptionInput:
    """A validated PushSubscription.toJSON(), plus the endpoint it replaces."""

    endpoint: str
    p256dh: str
    auth: str
    expiration_time: datetime | None
    old_endpoint: str | None


def parse_subscription(data: object, policy: HostPolicy) -> SubscriptionInput:
    """Validate a subscription body; raise Invalid naming the field at fault."""
    if not isinstance(data, dict):
        raise Invalid(None, "Send a JSON object: PushSubscription.toJSON().")
    endpoint = _endpoint(data.get("endpoint"), "endpoint", policy)
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise Invalid("keys", "keys must be an object with p256dh and auth.")
    p256dh = _p256dh(keys.get("p256dh"))
    auth = _b64_field(keys.get("auth"), "keys.auth", 16)
    old = data.get("oldEndpoint")
    if old is not None:
        if not isinstance(old, str) or not old or len(old) > MAX_ENDPOINT_LENGTH:
            raise Invalid("oldEndpoint", "oldEndpoint must be an endpoint URL.")
    return SubscriptionInput(endpoint, p256dh, auth, _expiration(data.get("expirationTime")), old)


def _endpoint(value: object, field: str, policy: HostPolicy) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid(field, f"{field} is required and must be a URL string.")
    if len(value) > MAX_ENDPOINT_LENGTH:
        raise Invalid(field, f"{field} is longer than {MAX_ENDPOINT_LENGTH} characters.")
    try:
        return policy.check_endpoint(value)
    except EndpointRefused as exc:
        raise Invalid(field, f"{field} {exc}.", code="endpoint_not_allowed") from exc


def _stored_forms(endpoint: str) -> set[str]:
    """Return the texts a device with this endpoint may be stored under, to find it by.

    New rows hold the canonical form; a row stored before endpoints were canonicalised may
    hold the text as it was sent (https://host:443/...).
    """
    try:
        return {endpoint, canonical_endpoint(endpoint)}
    except EndpointRefused:
        return {endpoint}


def _b64_field(value: object, field: str, size: int) -> str:
    if not isinstance(value, str) or len(value) > 4 * size:
        raise Invalid(field, f"{field} must be a base64url string.")
    try:
        raw = b64url_decode(value)
    except ValueError as exc:
        raise Invalid(field, f"{field} must be base64url.") from exc
    if len(raw) != size:
        raise Invalid(field, f"{field} must decode to {size} bytes, not {len(raw)}.")
    return value.rstrip("=")


def _p256dh(value: object) -> str:
    text = _b64_field(value, "keys.p256dh", 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(text))
    except ValueError as exc:
        raise Invalid(
            "keys.p256dh", "keys.p256dh is not an uncompressed P-256 public key."
        ) from exc
    return text


def _expiration(value: object) -> datetime | None:
    if value is None:
        return None
    # bool is an int in Python; a browser never sends one here.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("expirationTime", "expirationTime must be null or milliseconds.")
    if not 0 <= value < 253402300800000:
        raise Invalid("expirationTime", "expirationTime is out of range.")
    return datetime.fromtimestamp(value / 1000, UTC)


def save_subscription(
    user_id: int, sub: SubscriptionInput, user_agent: str, limit: int
) -> tuple[Subscription, bool]:
    """Upsert a device by endpoint for user_id; return it and whether it is new."""
    if sub.old_endpoint and sub.old_endpoint != sub.endpoint:
        # The browser replaced its subscription (pushsubscriptionchange): drop the old row,
        # but only the caller's own.
        db.session.execute(
            delete(Subscription).where(
                Subscription.endpoint.in_(_stored_forms(sub.old_endpoint) - {sub.endpoint}),
                Subscription.user_id == user_id,
            )
        )
    row = db.session.scalar(select(Subscription).where(Subscription.endpoint == sub.endpoint))
    created = row is None
    # A device moving to the caller from another account counts against the caller's limit
    # as much as a new one does.
    if row is None or row.user_id != user_id:
        count = db.session.execute(
            select(func.count()).select_from(Subscription).where(Subscription.user_id == user_id)
        ).scalar_one()
        if count >= limit:
            db.session.rollback()
            raise Conflict(
                "endpoint",
                gettext(
                    "You already have %(n)d devices; remove one on the notifications page.",
                    n=limit,
                ),
                "too_many_devices",
            )
    if row is None:
        row = Subscription(endpoint=sub.endpoint, user_id=user_id)
        db.session.add(row)
    # The endpoint now belongs to the caller: a shared browser changes hands on login.
    row.user_id = user_id
    row.p256dh = sub.p256dh
    row.auth = sub.auth
    row.expiration_time = sub.expiration_time
    row.user_agent = user_agent[:MAX_USER_AGENT]
    try:
        db.session.commit()
    except IntegrityError:
        # Two requests raced to insert the same endpoint: the other won, update it instead.
        db.session.rollback()
        if not created:
            raise
        return save_subscription(user_id, sub, user_agent, limit)
    return row, created


def remove_subscription(user_id: int, endpoint: object) -> None:
    """Delete the caller's device with this endpoint; unknown endpoints are fine."""
    if not isinstance(endpoint, str) or not endpoint:
        raise Invalid("endpoint", "endpoint is required.")
    db.session.execute(
        delete(Subscription).where(
            Subscription.endpoint.in_(_stored_forms(endpoint)), Subscription.user_id == user_id
        )
    )
    db.session.commit()


def list_subscriptions(user_id: int) -> list[Subscription]:
    """Return the user's devices, newest first."""
    return list(
        db.session.scalars(
            select(Subscription)
            .where(Subscription.user_id == user_id)
            .order_by(Subscription.created_at.desc(), Subscription.id.desc())
        )
    )
