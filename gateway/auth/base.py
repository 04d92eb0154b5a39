"""The one interface every authentication method implements.

An authenticator looks at a request and gives one of three answers, kept apart on purpose:
- `None`: no credential of my kind here (the next method gets its turn);
- raise `AuthenticationFailed`: a credential of my kind that is not valid (401, no fallback:
  a wrong password must not quietly become "anonymous");
- an `Identity`: accepted. The first method that accepts wins.
Built-in methods are registered in `gateway.auth.methods` the same way a new one would be.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

# Identity is the core's contract (tracking_core.contract); methods return it, the proxy sends it.
from tracking_core.contract import Identity

__all__ = ["AuthenticationFailed", "Authenticator", "Consumed", "Identity", "Method", "OpenAuthenticator"]


class AuthenticationFailed(Exception):
    """A credential of this method's kind was presented and is not valid."""

    def __init__(self, message: str, *, challenge: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The WWW-Authenticate value this method wants on the 401, e.g. 'Bearer error="invalid_token"'.
        self.challenge = challenge


@dataclass(frozen=True)
class Consumed:
    """What an accepted credential was carried in; the gateway removes it before forwarding, so the
    core (and its logs) never see a password, a token or a session cookie. Names are lowercase;
    a cookie name also covers its split parts (`name_0`, `name_1`, ...)."""

    headers: frozenset[str] = frozenset()
    cookies: frozenset[str] = frozenset()


class Authenticator(Protocol):
    """One way of proving identity. `name` is what `--auth` lists (basic, bearer, mtls, oidc)."""

    name: str
    consumed: Consumed

    async def authenticate(self, request: web.Request) -> Identity | None: ...

    def challenge(self) -> str | None:
        """The WWW-Authenticate value to offer when no method accepted the request, if any."""
        ...


# How a method is built, for its lifetime: `open(app)` is an async context manager (entered at
# startup, in the gateway's cleanup_ctx, after the core and the gateway's database are up) that
# yields the authenticator and closes what it opened (HTTP sessions, caches) on exit.
OpenAuthenticator = Callable[[web.Application], AbstractAsyncContextManager[Authenticator]]


@dataclass(frozen=True)
class Method:
    """An authentication method as the registry knows it.

    `add_routes(app)` runs while the app is built (routes cannot be added once it runs), e.g.
    /oauth2/* or /.well-known/jwks.json. `login_path`, if set, is where unauthenticated browser
    navigations are redirected (with `?rd=<path>`); API clients always get a 401 instead."""

    name: str
    open: OpenAuthenticator
    add_routes: Callable[[web.Application], None] | None = None
    login_path: str | None = None

