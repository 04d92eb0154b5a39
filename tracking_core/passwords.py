"""Password hashes: scrypt for trackgate's own users, bcrypt for htpasswd files.

scrypt at OWASP's parameters (N=2^17, r=8, p=1: 128 MiB and a few hundred ms per check), which
is why basic auth verifies through a cache (gateway.auth.basic) rather than per request.
Hashes carry their parameters, so stronger ones later do not invalidate stored hashes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets

import bcrypt

SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
_MAXMEM = 256 * 1024 * 1024  # N * r * 128 = 128 MiB, plus headroom


class UnsupportedHash(ValueError):
    """A stored hash in a format trackgate does not verify (e.g. htpasswd's unsalted {SHA})."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=_MAXMEM, dklen=32
    )
    return f"scrypt$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_format(stored: str) -> None:
    """Raise UnsupportedHash unless `stored` is a hash `verify` can check."""
    if stored.startswith("scrypt$") and stored.count("$") == 3:
        return
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        return
    if _WERKZEUG.fullmatch(stored):
        return
    raise UnsupportedHash("only bcrypt (htpasswd -B), trackgate's scrypt and werkzeug's hashes are accepted")


def verify(stored: str, password: str) -> bool:
    """Constant-time check of `password` against `stored` (blocking: run it in a thread)."""
    check_format(stored)
    if stored.startswith("scrypt$"):
        _, params, salt, digest = stored.split("$")
        p = dict(item.split("=") for item in params.split(","))
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(p["n"]), r=int(p["r"]), p=int(p["p"]),
            maxmem=_MAXMEM, dklen=len(expected),
        )
        return hmac.compare_digest(actual, expected)
    if match := _WERKZEUG.fullmatch(stored):
        return _verify_werkzeug(match, password)
    # bcrypt reads only the first 72 bytes; bcrypt 5 refuses longer input rather than truncate, and
    # so do we (a longer password must not match on its prefix). The hash runs all the same, so a
    # long password costs what any other does and timing does not tell that the user exists.
    data = password.encode()
    matches = bcrypt.checkpw(data[:72], stored.encode())
    return matches and len(data) <= 72


# Werkzeug's generate_password_hash, as MLflow's basic-auth users were stored (imported by
# `trackgate import-mlflow --auth-db`): "scrypt:N:r:p$salt$hex" or "pbkdf2:sha256:iterations$salt$hex".
_WERKZEUG = re.compile(
    r"(scrypt):(\d+):(\d+):(\d+)\$([^$]+)\$([0-9a-f]+)|pbkdf2:(sha\d+):(\d+)\$([^$]+)\$([0-9a-f]+)"
)


def _verify_werkzeug(match: re.Match[str], password: str) -> bool:
    if match.group(1) == "scrypt":
        n, r, p = (int(match.group(i)) for i in (2, 3, 4))
        salt, expected = match.group(5).encode(), bytes.fromhex(match.group(6))
        actual = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=132 * n * r * p,
                                dklen=len(expected))
    else:
        algorithm, iterations = match.group(7), int(match.group(8))
        salt, expected = match.group(9).encode(), bytes.fromhex(match.group(10))
        actual = hashlib.pbkdf2_hmac(algorithm, password.encode(), salt, iterations, dklen=len(expected))
    return hmac.compare_digest(actual, expected)


@functools.cache
def dummy_hash() -> str:
    """Checked for names that do not exist, so a wrong user costs as much as a wrong password and
    timing does not tell which names are users. Made on first use, not at import."""
    return hash_password(secrets.token_urlsafe(16))
