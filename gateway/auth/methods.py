"""Which authentication methods exist, and building the enabled ones in the configured order.

A method is a `Method` (gateway.auth.base) found by name in METHODS, as "module:attribute" so
that a method's dependencies are imported only when it is enabled (and a registered module may
arrive later than its name). The built-ins register exactly as a new method would:

    registry.register("ldap", "mycompany.trackgate_ldap:METHOD")

`install()` is called while the gateway app is built: it adds the enabled methods' routes and a
cleanup_ctx that opens them, in `--auth` order, once the core and the gateway's database are up.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from gateway import keys
from gateway.auth.base import Authenticator, Method

METHODS: dict[str, str] = {
    "basic": "gateway.auth.basic:METHOD",
    "bearer": "gateway.auth.bearer:METHOD",
    "mtls": "gateway.auth.mtls:METHOD",
    "oidc": "gateway.auth.oidc:METHOD",
    "forwarded": "gateway.auth.forwarded:METHOD",
}


def register(name: str, target: str) -> None:
    """Make `--auth name` available; `target` is "module:attribute" naming a `Method`."""
    METHODS[name] = target


def resolve(name: str) -> Method:
    module_name, _, attribute = METHODS[name].partition(":")
    method = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(method, Method) or method.name != name:
        raise TypeError(f"{METHODS[name]} is not the Method named {name!r}")
    return method


@dataclass(frozen=True)
class AuthChain:
    """The enabled authenticators in order, and where browsers log in (None: nowhere)."""

    authenticators: tuple[Authenticator, ...]
    login_path: str | None

    def challenges(self) -> list[str]:
        return [c for a in self.authenticators if (c := a.challenge())]

    def known_good(self, request: web.Request) -> bool:
        """Whether a method accepted this very credential recently (`known_good(request)`, optional
        on a method): the throttle lets it through, so a lockout does not spread to it."""
        return any((check := getattr(a, "known_good", None)) is not None and check(request)
                   for a in self.authenticators)


def install(app: web.Application) -> None:
    """Add the routes of the enabled methods now, and open them at startup (cleanup_ctx)."""
    methods = [resolve(name) for name in app[keys.config].auth]
    if not methods:
        return  # open server: no auth middleware work at all
    for method in methods:
        if method.add_routes is not None:
            method.add_routes(app)
    login_path = next((m.login_path for m in methods if m.login_path), None)
    app.cleanup_ctx.append(engine_context)

    async def auth_context(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            opened = [await stack.enter_async_context(m.open(app)) for m in methods]
            app[keys.auth_chain] = AuthChain(tuple(opened), login_path)
            yield

    app.cleanup_ctx.append(auth_context)


async def engine_context(app: web.Application) -> AsyncIterator[None]:
    """The gateway's own small engine on the tracking database (users, tokens, stored keys).

    Small pool: the gateway reads a user row every few seconds per user, not per request. An
    engine connects lazily, so methods that never use it cost nothing. None with artifacts_only
    (there is no tracking database then)."""
    config = app[keys.config]
    if config.artifacts_only:
        yield
        return
    from tracking_core.store.database import create_engine  # lazy: SQLAlchemy only when used

    engine = create_engine(config.with_changes(db_pool_size=2, db_max_overflow=2))
    app[keys.auth_engine] = engine
    yield
    await engine.dispose()
