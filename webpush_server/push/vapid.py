"""VAPID (RFC 8292): the server's key pair and cached per-audience JWTs."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from ..config import write_private_file

# Tokens live 12 h (the RFC allows 24 h); renew an hour early so none expires in flight.
TOKEN_LIFETIME = 12 * 3600
RENEW_BEFORE = 3600


def b64url_encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raise ValueError on bad input."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url")
    stripped = text.rstrip("=")
    if any(c not in _B64URL_ALPHABET for c in stripped) or len(stripped) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def key_path(instance_path: str) -> Path:
    """Return where `vapid generate` keeps the private key."""
    return Path(instance_path) / "vapid_private.pem"


def generate_key_file(path: Path) -> ec.EllipticCurvePrivateKey:
    """Create a new P-256 private key at path (PEM, mode 0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    # Created 0600, never chmod-ed after: no moment where another user could read the key.
    write_private_file(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return key


def load_private_key(value: str) -> ec.EllipticCurvePrivateKey:
    """Load a private key given as PEM text or as a base64url raw 32-byte scalar."""
    value = value.strip()
    if value.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(value.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("VAPID key must be a P-256 (prime256v1) EC key")
        return key
    raw = b64url_decode(value)
    if len(raw) != 32:
        raise ValueError("a raw VAPID private key is 32 bytes of base64url")
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """Return the applicationServerKey: base64url of the 65-byte uncompressed point."""
    return b64url_encode(
        key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    )


class VapidSigner:
    """Signs one JWT per push service audience and reuses it until shortly before expiry."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, subject: str) -> None:
        self._vapid = Vapid02(private_key=key)
        self.subject = subject
        self.public_key = public_key_b64(key)
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def authorization(self, audience: str, now: float | None = None) -> str:
        """Return the Authorization header value for a push service origin."""
        now = time.time() if now is None else now
        with self._lock:
            cached = self._cache.get(audience)
            if cached and cached[0] - RENEW_BEFORE > now:
                return cached[1]
            exp = int(now) + TOKEN_LIFETIME
            # A fresh claims dict per audience: signing fills it in, so sharing one would leak
            # one service's aud into another's token.
            claims = {"aud": audience, "exp": exp, "sub": self.subject}
            header = self._vapid.sign(claims)["Authorization"]
            self._cache[audience] = (exp, header)
            return header
