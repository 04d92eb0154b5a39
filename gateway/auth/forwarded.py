"""Identity from a trusted authenticating proxy (`--auth forwarded`): oauth2-proxy in front.

For a staged move: trackgate goes behind a team's existing oauth2-proxy first (which sets
X-Forwarded-User / -Email / -Groups after its own login), and SSO moves into trackgate later.
The headers are believed only when the TCP peer itself is one of `trusted_proxies`: the peer as
the socket saw it, never `request.remote`, which gateway.forwarded may already have re-seen as
the proxy's client. From any other address they are not my kind of credential (None), and the
proxy strips them before the core as it strips every identity header (gateway/proxy.py).

Header names are settings (forwarded_user_header, ...), for proxies that use other names. A
request from the proxy that carries a name twice, or also in a disguised spelling (underscores,
other case of separators), is refused: which copy the proxy wrote cannot be told.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from gateway import keys
from gateway.auth.base import AuthenticationFailed, Consumed, Identity, Method
from gateway.forwarded import TrustedProxies
from gateway.proxy import canonical


def _peer(request: web.Request) -> str | None:
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peername, tuple | list) and peername:
        return str(peername[0])
    return None


class ForwardedAuthenticator:
    name = "forwarded"

    def __init__(self, proxies: TrustedProxies, user: str, email: str, groups: str) -> None:
        self._proxies = proxies
        self._user, self._email, self._groups = user, email, groups
        self._folded = {canonical(n) for n in (user, email, groups)}
        self._exact = frozenset(n.lower() for n in (user, email, groups))
        self.consumed = Consumed(headers=self._exact)

    def challenge(self) -> str | None:
        return None  # the proxy in front does the login; there is nothing to ask the client for

    def _single(self, request: web.Request, name: str) -> str | None:
        values = request.headers.getall(name, [])
        if len(values) > 1:
            raise AuthenticationFailed(f"The proxy sent {name} more than once.")
        return values[0].strip() if values and values[0].strip() else None

    def _refuse_disguised(self, request: web.Request) -> None:
        for raw_name, _ in request.raw_headers:
            name = raw_name.decode("latin-1")
            if canonical(name) in self._folded and name.lower() not in self._exact:
                raise AuthenticationFailed(f"The proxy sent an identity header spelled {name!r}.")

    async def authenticate(self, request: web.Request) -> Identity | None:
        if not self._proxies.trusts(_peer(request)):
            return None  # a client's own claim: ignored here, stripped before the core
        self._refuse_disguised(request)
        user = self._single(request, self._user)
        if user is None:
            return None  # e.g. a route the proxy lets through unauthenticated: other methods may try
        groups_value = self._single(request, self._groups) or ""
        groups = tuple(g.strip() for g in groups_value.split(",") if g.strip())
        return Identity(subject=user, method=self.name, email=self._single(request, self._email), groups=groups)


@contextlib.asynccontextmanager
async def open_forwarded(app: web.Application) -> AsyncIterator[ForwardedAuthenticator]:
    config = app[keys.config]
    yield ForwardedAuthenticator(
        TrustedProxies(config.trusted_proxies),
        config.forwarded_user_header,
        config.forwarded_email_header,
        config.forwarded_groups_header,
    )


METHOD = Method(name="forwarded", open=open_forwarded)
