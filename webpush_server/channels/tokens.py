"""Signed links that act without a login: one-click unsubscribe and password reset."""

from __future__ import annotations

import os

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer


def public_url() -> str:
    """Return the site's absolute base URL for links built outside a request."""
    base = (
        current_app.config.get("PUBLIC_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '5000')}"
    )
    return base.rstrip("/")


def _serializer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def unsubscribe_token(user_id: int, kind: str) -> str:
    """Return the token that turns this user's e-mail of this kind off."""
    return _serializer("unsubscribe").dumps([user_id, kind])


def read_unsubscribe_token(token: str) -> tuple[int, str] | None:
    """Return (user id, kind) of a genuine unsubscribe token, else None."""
    try:
        value = _serializer("unsubscribe").loads(token)
    except BadSignature:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], int)
        or not isinstance(value[1], str)
    ):
        return None
    return value[0], value[1]


def reset_token(reset_id: int) -> str:
    """Return the token of a password reset link (its row holds expiry and use)."""
    return _serializer("password-reset").dumps(reset_id)


def read_reset_token(token: str) -> int | None:
    """Return the password reset id a genuine token names, else None."""
    try:
        value = _serializer("password-reset").loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
