"""What the JWT checks share: the spellings an issuer's `iss` may take, the challenge on a refused
bearer token, and the Identity a verified token's claims name.

Used by trackgate's own tokens (tokens.py), external issuers (jwks.py, bearer.py) and OIDC
sign-on (oidc_client.py).
"""

from __future__ import annotations

from gateway.auth.base import Identity

CHALLENGE_INVALID = 'Bearer realm="trackgate", error="invalid_token"'

# Other spellings of an issuer's `iss`: Google documents both for its ID tokens (google-auth accepts both).
ISSUER_ALIASES: dict[str, tuple[str, ...]] = {"https://accounts.google.com": ("accounts.google.com",)}


def issuer_names(issuer: str) -> tuple[str, ...]:
    """Every `iss` a token from `issuer` may carry: the configured URL first, then its aliases."""
    return (issuer, *ISSUER_ALIASES.get(issuer, ()))


def bearer_identity(subject: str, email: object, groups: object) -> Identity:
    """The caller a verified bearer token names; an email or groups claim of the wrong type is ignored."""
    return Identity(
        subject=subject,
        method="bearer",
        email=email if isinstance(email, str) else None,
        groups=tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else (),
    )
