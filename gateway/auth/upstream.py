"""What the core learns about the caller: the identity headers, and nothing of the credential.

The proxy has already removed every client-sent identity header (any case, `_` or `-`). Here
the credential the accepted method consumed (the Authorization header, session cookies) is
removed too, so the core and its logs never hold a password or token, and the identity is added
from the Identity alone. Values are percent-encoded UTF-8 (header values are bytes on the
wire; a certificate CN or a name may be any Unicode), groups comma-separated.
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from gateway import keys
from gateway.auth.base import Consumed
from tracking_core.contract import identity_headers


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
