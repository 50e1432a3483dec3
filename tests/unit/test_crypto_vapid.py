"""Message encryption against the http_ece reference, and VAPID token caching."""

from __future__ import annotations

import json
import os

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.unit import jwt_check
from webpush_server.push.crypto import MAX_PLAINTEXT, encrypt
from webpush_server.push.vapid import (
    RENEW_BEFORE,
    TOKEN_LIFETIME,
    VapidSigner,
    b64url_decode,
    b64url_encode,
)


def receiver():
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    auth = os.urandom(16)
    return key, b64url_encode(public), b64url_encode(auth), auth


@pytest.mark.parametrize("size", [0, 1, 200, MAX_PLAINTEXT])
def test_encrypt_decrypts_with_the_reference_library(size):
    key, p256dh, auth_b64, auth = receiver()
    plaintext = os.urandom(size)
    body = encrypt(plaintext, p256dh, auth_b64)
    assert len(body) <= 4096
    assert (
        http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm") == plaintext
    )


def test_each_message_uses_a_fresh_key_and_salt():
    _, p256dh, auth_b64, _ = receiver()
    first, second = encrypt(b"x", p256dh, auth_b64), encrypt(b"x", p256dh, auth_b64)
    assert first[:16] != second[:16]  # salt
    assert first[21:86] != second[21:86]  # ephemeral public key


def test_plaintext_over_one_record_is_refused():
    _, p256dh, auth_b64, _ = receiver()
    with pytest.raises(ValueError):
        encrypt(b"x" * (MAX_PLAINTEXT + 1), p256dh, auth_b64)


def test_signer_reuses_a_token_per_audience_and_renews_before_expiry():
    key = ec.generate_private_key(ec.SECP256R1())
    signer = VapidSigner(key, "mailto:ops@library.org")
    now = 1_800_000_000.0
    fcm = signer.authorization("https://fcm.googleapis.com", now)
    assert signer.authorization("https://fcm.googleapis.com", now + 3600) == fcm
    mozilla = signer.authorization("https://updates.push.services.mozilla.com", now)
    assert mozilla != fcm
    claims = jwt_check.claims(fcm, key.public_key())
    assert claims == {
        "aud": "https://fcm.googleapis.com",
        "exp": int(now) + TOKEN_LIFETIME,
        "sub": "mailto:ops@library.org",
    }
    assert (
        jwt_check.claims(mozilla, key.public_key())["aud"]
        == "https://updates.push.services.mozilla.com"
    )
    assert TOKEN_LIFETIME <= 12 * 3600
    later = now + TOKEN_LIFETIME - RENEW_BEFORE + 1
    renewed = signer.authorization("https://fcm.googleapis.com", later)
    assert renewed != fcm
    assert jwt_check.claims(renewed, key.public_key())["exp"] == int(later) + TOKEN_LIFETIME


def test_b64url_is_strict():
    assert b64url_decode("AQID") == b"\x01\x02\x03"
    assert b64url_decode("AQI=") == b"\x01\x02"
    for bad in ("A", "a+b/", "ab cd", "é"):
        with pytest.raises(ValueError):
            b64url_decode(bad)
    assert json.loads(b64url_decode(b64url_encode(b'{"a":1}'))) == {"a": 1}
