"""Message encryption for Web Push (RFC 8291 over RFC 8188 aes128gcm)."""

from __future__ import annotations

import os
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .vapid import b64url_decode

RECORD_SIZE = 4096
# One record: 86 bytes of header (salt, rs, idlen, key), 16 of tag, 1 padding delimiter.
MAX_PLAINTEXT = RECORD_SIZE - 86 - 16 - 1  # 3993


@lru_cache(maxsize=4096)
def _receiver(p256dh: str, auth: str) -> tuple[ec.EllipticCurvePublicKey, bytes, bytes]:
    """Parse a subscription's keys once per process: batches resend to the same devices."""
    ua_public = b64url_decode(p256dh)
    return (
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ua_public),
        ua_public,
        b64url_decode(auth),
    )


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def encrypt(plaintext: bytes, p256dh: str, auth: str) -> bytes:
    """Encrypt plaintext for one subscription as a single aes128gcm record.

    A new ephemeral key pair per message, as RFC 8291 requires.
    """
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f"plaintext of {len(plaintext)} bytes exceeds {MAX_PLAINTEXT}")
    ua_key, ua_public, auth_secret = _receiver(p256dh, auth)
    as_private = ec.generate_private_key(ec.SECP256R1())
    as_public = as_private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    shared = as_private.exchange(ec.ECDH(), ua_key)
    ikm = _hkdf(auth_secret, shared, b"WebPush: info\x00" + ua_public + as_public, 32)
    salt = os.urandom(16)
    cek = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    # The last (only) record ends with the 0x02 delimiter and no further padding.
    ciphertext = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    header = salt + RECORD_SIZE.to_bytes(4, "big") + bytes([len(as_public)]) + as_public
    return header + ciphertext
