"""Password hashes live in the core (tracking_core.passwords): the core's users API hashes too,
and the core never imports the gateway."""

from tracking_core.passwords import (
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    UnsupportedHash,
    check_format,
    dummy_hash,
    hash_password,
    verify,
)

__all__ = [
    "SCRYPT_N", "SCRYPT_P", "SCRYPT_R", "UnsupportedHash", "check_format", "dummy_hash", "hash_password", "verify",
]
