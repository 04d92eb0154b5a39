"""trackgate's own token signing key: load, generate, publish.

Ed25519 (EdDSA) by default, EC P-256 (ES256) accepted. The algorithm always follows from the
key type, never from a token's header (RFC 8725 §2.1): an RSA, HMAC or unknown key is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

SigningPrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
VerifyKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


class SigningKeyError(Exception):
    """The configured key cannot sign trackgate tokens (message safe to show: no key material)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    private: SigningPrivateKey
    algorithm: str  # "EdDSA" or "ES256"
    kid: str

    @property
    def public(self) -> VerifyKey:
        return self.private.public_key()

    def public_jwk(self) -> dict[str, Any]:
        return {**_public_members(self.public), "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def private_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()


def _public_members(public: VerifyKey) -> dict[str, str]:
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}
    numbers = public.public_numbers()
    return {"crv": "P-256", "kty": "EC", "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big"))}


def thumbprint(public: VerifyKey) -> str:
    """RFC 7638 JWK thumbprint: a kid that names the key itself, the same on every replica."""
    canonical = json.dumps(_public_members(public), sort_keys=True, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def load_private_key(pem: str) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        # Never include the PEM or cryptography's message (which may quote it) in the error.
        raise SigningKeyError("is not an unencrypted PEM private key") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = "EdDSA"
    elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        algorithm = "ES256"
    else:
        raise SigningKeyError("must be an Ed25519 or EC P-256 key (RSA and HMAC keys are not accepted)")
    return SigningKey(key, algorithm, thumbprint(key.public_key()))


def generate() -> SigningKey:
    key = ed25519.Ed25519PrivateKey.generate()
    return SigningKey(key, "EdDSA", thumbprint(key.public_key()))
