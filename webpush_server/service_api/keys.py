"""API keys: create, list, revoke, and authenticate a bearer key.

A key is ``wps_`` and 43 URL-safe characters from ``secrets.token_urlsafe(32)``: 256 random
bits. Only its SHA-256 is stored. A fast hash is enough here, unlike for passwords: a slow,
salted hash (bcrypt, scrypt) protects secrets people choose, which are guessable; nobody can
guess a 256-bit random value, so a stolen hash is no better than a guess, and an unsalted hash
lets us find the row by an indexed lookup instead of trying every key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask_babel import gettext
from sqlalchemy import or_, select, update

from ..database import get_or_refuse, rows_changed
from ..errors import Conflict, Invalid
from ..extensions import db
from ..timeutil import utcnow
from .models import SITES, ApiKey

PREFIX = "wps_"
# last_used_at is written at most this often per key: not a write on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def hash_key(secret: str) -> str:
    """Return the stored form of a key: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(name: str, site: str = "all") -> tuple[ApiKey, str]:
    """Create a key; return the row and the secret (shown once, never stored)."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid("name", gettext("Give the key a name of 1 to 120 characters."))
    if site not in SITES:
        raise Invalid("site", gettext("Site must be one of %(sites)s.", sites=", ".join(SITES)))
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, site=site, key_hash=hash_key(secret), prefix=secret[:12])
    db.session.add(key)
    db.session.commit()
    return key, secret


def list_keys() -> list[ApiKey]:
    """Return every key, oldest first."""
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(key_id: object) -> ApiKey:
    """Revoke a key: it is refused from the next request on."""
    key = get_or_refuse(ApiKey, key_id, field="id", message=gettext("No such API key."))
    if key.revoked_at is not None:
        raise Conflict("id", gettext("That key is already revoked."), "already_revoked")
    key.revoked_at = utcnow()
    db.session.commit()
    return key


def authenticate(secret: str | None) -> ApiKey | None:
    """Return the active key whose secret this is, else None (unknown, revoked or malformed)."""
    if not secret or not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    digest = hash_key(secret)
    key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    # The lookup is by hash (an index cannot leak the secret's bytes by timing); the
    # compare_digest makes the final check constant-time as well.
    if key is None or not hmac.compare_digest(key.key_hash, digest) or key.revoked_at:
        return None
    now = utcnow()
    stale = now - LAST_USED_RESOLUTION
    if key.last_used_at is None or key.last_used_at < stale:
        rows_changed(
            update(ApiKey)
            .where(
                ApiKey.id == key.id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale),
            )
            .values(last_used_at=now)
        )
        db.session.commit()
    return key
