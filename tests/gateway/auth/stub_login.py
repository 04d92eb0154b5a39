"""A method registered by the tests through the same door as the built-ins (registry.register):
it never accepts anyone, but offers a login page, as OIDC sign-on does. Lets the browser-vs-API
decisions be tested without a provider; the SSO tests cover the real one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.auth.base import Consumed, Identity, Method


class NobodyAuthenticator:
    name = "stub-login"
    consumed = Consumed()

    async def authenticate(self, request: web.Request) -> Identity | None:
        return None

    def challenge(self) -> str | None:
        return None


@contextlib.asynccontextmanager
async def open_stub(app: web.Application) -> AsyncIterator[NobodyAuthenticator]:
    yield NobodyAuthenticator()


METHOD = Method(name="stub-login", open=open_stub, login_path="/oauth2/start")
