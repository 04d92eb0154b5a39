"""What the core learns about the caller: the identity headers, and nothing of the credential.

The proxy has already removed every client-sent identity header (any case, `_` or `-`). Here
the credential the accepted method consumed (the Authorization header, session cookies) is
removed too, so the core and its logs never hold a password or token, and the identity is added
from the Identity alone. Values are percent-encoded UTF-8 (header values are bytes on the
wire; a certificate CN or a name may be any Unicode), groups comma-separated.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from aiohttp import web
from multidict import CIMultiDict

from gateway import keys
from gateway.auth.base import EMAIL_HEADER, GROUPS_HEADER, METHOD_HEADER, SUBJECT_HEADER, Consumed, Identity

_SAFE = "!#$&'()*+/:;<=>?@[]^`{|}~ "  # printable ASCII stays readable; only % , and controls encode


def encode(value: str) -> str:
    return quote(value, safe=_SAFE)


def decode(value: str) -> str:
    return unquote(value, errors="replace")


def identity_headers(identity: Identity) -> dict[str, str]:
    headers = {SUBJECT_HEADER: encode(identity.subject), METHOD_HEADER: identity.method}
    if identity.email:
        headers[EMAIL_HEADER] = encode(identity.email)
    if identity.groups:
        headers[GROUPS_HEADER] = ",".join(encode(g) for g in identity.groups)
    return headers


def parse_identity(headers: CIMultiDict[str] | web.Request) -> Identity | None:
    """The core's side: the Identity the gateway sent, or None for an unauthenticated request."""
    h = headers.headers if isinstance(headers, web.Request) else headers
    subject = h.get(SUBJECT_HEADER)
    if not subject:
        return None
    groups = tuple(decode(g) for g in h.get(GROUPS_HEADER, "").split(",") if g)
    email = h.get(EMAIL_HEADER)
    method = h.get(METHOD_HEADER, "unknown")
    return Identity(decode(subject), method, decode(email) if email else None, groups)


def _without_cookies(value: str, names: frozenset[str]) -> str:
    kept = []
    for part in value.split(";"):
        name = part.split("=", 1)[0].strip()
        base, _, index = name.rpartition("_")
        if name in names or (index.isdigit() and base in names):
            continue
        kept.append(part.strip())
    return "; ".join(p for p in kept if p)


def apply(request: web.Request, headers: CIMultiDict[str]) -> None:
    """Strip the consumed credential and add the identity headers (no-op when unauthenticated)."""
    identity = request.get(keys.identity)
    if identity is None:
        return
    consumed = request.get(keys.consumed, Consumed())
    for name in consumed.headers:
        headers.popall(name, None)
    if consumed.cookies and "Cookie" in headers:
        cookies = [_without_cookies(v, consumed.cookies) for v in headers.popall("Cookie")]
        if remaining := "; ".join(c for c in cookies if c):
            headers["Cookie"] = remaining
    headers.update(identity_headers(identity))
