"""Who may sign in: email domains, email addresses and groups, from the provider's claims.

Rules (fail closed; config validation insists that at least one list is set):
- the email rule applies when `oidc_email_domains` or `oidc_allowed_emails` is set: the email
  must be in `oidc_allowed_emails` or end in one of the domains (`*`: any; `.example.com`: any
  subdomain of example.com);
- the group rule applies when `oidc_allowed_groups` is set: one of the user's groups (the
  `oidc_groups_claim` claim) must be listed;
- every rule that applies must pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.auth.oidc_client import OIDCClient, SignOnRefused
from gateway.config import Config


async def with_userinfo(
    claims: dict[str, Any], client: OIDCClient, access_token: str | None, config: Config
) -> dict[str, Any]:
    """ID-token claims, completed from the userinfo endpoint when the email or the groups the
    allow-list needs are missing (Entra ID and spec-strict providers keep them there)."""
    needs_groups = bool(config.oidc_allowed_groups) and config.oidc_groups_claim not in claims
    if ("email" in claims and not needs_groups) or not access_token:
        return claims
    info = await client.userinfo(access_token)
    if info.get("sub") != claims["sub"]:  # OIDC Core §5.3.2: otherwise it is someone else's
        return claims
    return {**info, **claims}


def groups_of(claims: Mapping[str, Any], claim: str) -> tuple[str, ...]:
    """The groups claim as a tuple of strings (providers send a list, some a single string)."""
    value = claims.get(claim)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(g) for g in value if isinstance(g, str | int))
    return ()


def check(claims: Mapping[str, Any], config: Config) -> tuple[str | None, tuple[str, ...]]:
    """(email, groups) of an allowed user; raise SignOnRefused, saying why, otherwise."""
    email = claims.get("email")
    email = email.strip() if isinstance(email, str) and email.strip() else None
    groups = groups_of(claims, config.oidc_groups_claim)
    if config.oidc_email_domains or config.oidc_allowed_emails:
        if email is None:
            raise SignOnRefused("The provider did not tell us your email address (is the email scope granted?).")
        # Only an explicit `false` counts: Entra ID sends no email_verified at all.
        if claims.get("email_verified") in (False, "false"):
            raise SignOnRefused(f"The email address {email} is not verified at the provider.")
        if not email_allowed(email, config.oidc_email_domains, config.oidc_allowed_emails):
            raise SignOnRefused(f"{email} is not allowed to sign in to this server.")
    if config.oidc_allowed_groups and not set(groups) & set(config.oidc_allowed_groups):
        raise SignOnRefused(f"{email or 'This account'} is not in a group that may sign in to this server.")
    return email, groups


def email_allowed(email: str, domains: tuple[str, ...], emails: tuple[str, ...]) -> bool:
    # Exactly one "@": `a@evil.example@example.com` must not pass as example.com (CVE-2026-40574).
    if email.count("@") != 1:
        return False
    address = email.lower()
    if address in (e.lower() for e in emails):
        return True
    domain = address.rsplit("@", 1)[1]
    for allowed in (d.lower().lstrip("@") for d in domains):
        if allowed == "*" or domain == allowed or (allowed.startswith(".") and domain.endswith(allowed)):
            return True
    return False
