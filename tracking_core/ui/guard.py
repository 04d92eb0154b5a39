"""Cross-site request protection for the UI's state-changing forms.

The gateway's session cookie is SameSite=Lax, so a cross-site POST carries no session; this
check is the second lock: a POST must come from a page of this very origin. Browsers send
`Origin` on every form POST; a request without it (or from elsewhere) is refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web


def own_origin(request: web.Request) -> str:
    # The gateway tells the core what the browser used (X-Forwarded-*); the core trusts headers
    # only from its private socket, where every request comes through the gateway.
    scheme = request.headers.get("X-Forwarded-Proto") or request.scheme
    host = request.headers.get("X-Forwarded-Host") or request.host
    return f"{scheme}://{host}".lower()


def same_origin(request: web.Request) -> bool:
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}".lower() == own_origin(request)


def require_same_origin(request: web.Request) -> None:
    if not same_origin(request):
        raise web.HTTPForbidden(text="Cross-site form submission refused.")
