"""What a basic-auth user name and password must be, for every way a user is made or changed.

One home for the rules, because users are created both by the operator's CLI (`trackgate users`)
and by admins through MLflow's users API in the core: a name either path accepts must be one
that basic auth can sign in and a log line can print.
"""

from __future__ import annotations

MAX_NAME = 255
MIN_PASSWORD = 8  # NIST SP 800-63B's minimum for a password a person chose
MAX_PASSWORD = 1024


class CredentialRuleError(ValueError):
    """A user name or password that breaks a rule; the message says which, never the value."""


def check_name(name: str) -> str:
    """Printable, no colon (HTTP basic splits "name:password" at the first one), no surrounding
    spaces, bounded."""
    if not name or name != name.strip():
        raise CredentialRuleError("a user name must not be empty or start or end with a space")
    if len(name) > MAX_NAME:
        raise CredentialRuleError(f"a user name is at most {MAX_NAME} characters")
    if ":" in name:
        raise CredentialRuleError("a user name must not contain ':' (basic auth could never sign it in)")
    if not name.isprintable():
        raise CredentialRuleError("a user name must be printable: no newlines, tabs or control characters")
    return name


def check_password(password: str) -> str:
    if not password:
        raise CredentialRuleError("the password is empty")
    if len(password) < MIN_PASSWORD:
        raise CredentialRuleError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise CredentialRuleError(f"the password must have at most {MAX_PASSWORD} characters")
    return password
