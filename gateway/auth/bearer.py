"""Bearer JWTs (`--auth bearer`, MLFLOW_TRACKING_TOKEN): trackgate's own tokens and trusted issuers'.

The token's unverified `iss` only chooses WHICH verifier to ask (ours, or one configured
issuer); that verifier then checks the signature with its own keys and algorithms, audience,
expiry and not-before. An issuer that is not configured is refused. Trackgate's public keys are
served at /.well-known/jwks.json so other services can verify its tokens too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from gateway import keys
from gateway.auth.base import AuthenticationFailed, Consumed, Identity, Method
from gateway.auth.jwks import ISSUER_ALIASES, IssuerKeys
from gateway.auth.tokens import CHALLENGE_INVALID, OwnTokens, Revocations, signing_key

CHALLENGE = 'Bearer realm="trackgate"'
JWKS_PATH = "/.well-known/jwks.json"


class BearerAuthenticator:
    name = "bearer"
    consumed = Consumed(headers=frozenset({"authorization"}))

    def __init__(self, own: OwnTokens, issuers: list[IssuerKeys], leeway: float) -> None:
        self.own = own
        self._leeway = leeway
        self._issuers: dict[str, IssuerKeys] = {}
        for issuer in issuers:
            for name in (issuer.issuer.issuer, *ISSUER_ALIASES.get(issuer.issuer.issuer, ())):
                self._issuers[name] = issuer

    def challenge(self) -> str:
        return CHALLENGE

    async def authenticate(self, request: web.Request) -> Identity | None:
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        try:
            header: dict[str, Any] = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.DecodeError:
            raise AuthenticationFailed("Bearer token is not a JWT.", challenge=CHALLENGE_INVALID) from None
        issuer = claims.get("iss")
        if issuer == self.own.issuer:
            return await self.own.verify(token, header)
        if isinstance(issuer, str) and issuer in self._issuers:
            return await self._issuers[issuer].verify(token, header, self._leeway)
        raise AuthenticationFailed("The token's issuer is not trusted.", challenge=CHALLENGE_INVALID)


@contextlib.asynccontextmanager
async def open_bearer(app: web.Application) -> AsyncIterator[BearerAuthenticator]:
    config = app[keys.config]
    key = await signing_key(config)
    own = OwnTokens(key, config, Revocations(app.get(keys.auth_engine)))
    async with aiohttp.ClientSession(headers={"User-Agent": "trackgate"}) as session:
        issuers = [IssuerKeys(i, session, config.jwks_cache_ttl) for i in config.jwt_issuers]
        yield BearerAuthenticator(own, issuers, config.jwt_leeway)


async def jwks(request: web.Request) -> web.Response:
    """The public keys of trackgate's own tokens (RFC 7517), for anyone verifying them."""
    chain = request.app.get(keys.auth_chain)
    methods = chain.authenticators if chain else ()
    bearer = next((a for a in methods if isinstance(a, BearerAuthenticator)), None)
    if bearer is None:
        raise web.HTTPNotFound()
    body = {"keys": [bearer.own.key.public_jwk()]}
    return web.json_response(body, headers={"Cache-Control": "public, max-age=300"})


def add_routes(app: web.Application) -> None:
    app.router.add_get(JWKS_PATH, jwks)


METHOD = Method(name="bearer", open=open_bearer, add_routes=add_routes)
