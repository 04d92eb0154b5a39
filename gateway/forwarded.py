"""Believe X-Forwarded-For/-Proto/-Host only from reverse proxies the operator named.

With `trusted_proxies` empty (the default) nothing a client claims about itself is believed: the
request's address, scheme and host are what this gateway saw (oauth2-proxy's CVE-2026-40575 came
from trusting such headers from anyone). When the peer is a trusted proxy, the request is
re-seen as the proxy describes it: the client address is the right-most X-Forwarded-For entry
that is not itself a trusted proxy, the scheme and host come from X-Forwarded-Proto/-Host.
Everything after this middleware (authentication, cookies' Secure flag, redirects, the proxy's
own X-Forwarded-* to the core) then uses `request.remote`, `.scheme` and `.host` as usual.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class TrustedProxies:
    def __init__(self, cidrs: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)

    def trusts(self, address: str | None) -> bool:
        ip = _address(address) if address else None
        return ip is not None and any(ip in net for net in self.networks)

    def client_address(self, peer: str, forwarded_for: list[str]) -> str:
        """Walk the chain from the right, past trusted proxies; the first other hop is the client."""
        hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
        current = peer
        while hops and self.trusts(current):
            current = hops.pop()
            if _address(current) is None:
                return peer  # a garbled chain: fall back to what we saw
        return str(_address(current) or current)


def build_forwarded_middleware(trusted: TrustedProxies) -> Middleware:
    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not trusted.trusts(request.remote):
            return await handler(request)
        chain = request.headers.getall("X-Forwarded-For", [])
        remote = trusted.client_address(request.remote or "", chain)
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        plain_host = bool(host) and all(c.isalnum() or c in ".-:[]" for c in host)
        return await handler(request.clone(
            remote=remote,
            scheme=proto if proto in ("http", "https") else request.scheme,
            host=host if plain_host else request.host,
        ))

    return forwarded
