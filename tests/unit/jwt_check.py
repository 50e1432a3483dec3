"""Verify a `vapid t=..., k=...` header's ES256 JWT and return its claims (test helper)."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from webpush_server.push.vapid import b64url_decode


def claims(header: str, public_key: ec.EllipticCurvePublicKey) -> dict:
    """Return the claims after checking the signature with public_key."""
    assert header.startswith("vapid ")
    params = dict(part.strip().split("=", 1) for part in header[6:].split(","))
    head, payload, signature = params["t"].split(".")
    raw = b64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key.verify(der, f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    assert json.loads(b64url_decode(head))["alg"] == "ES256"
    return json.loads(b64url_decode(payload))
