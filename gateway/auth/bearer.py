"""Bearer JWTs (`--auth bearer`, MLFLOW_TRACKING_TOKEN): trackgate's own tokens and trusted issuers'.

The token's unverified `iss` only chooses WHICH verifier to ask (ours, or one configured
issuer); that verifier then checks the signature with its own keys and algorithms, audience,
expiry and not-before. An issuer that is not configured is refused. Trackgate's public keys are
served at /.well-known/jwks.json so other services can verify its tokens too.

A client sends the same token with every request, and parsing plus a signature check costs
more than the rest of a log_metric call in the gateway; so an accepted token is remembered
(keyed by its SHA-256, bounded LRU) until its `exp` or for at most CACHE_SECONDS, whichever is
sooner. Revocation is still checked on every hit (an in-memory set lookup).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from gateway import keys
from gateway.auth.base import AuthenticationFailed, Consumed, Identity, Method
from gateway.auth.claims import CHALLENGE_INVALID, issuer_names
from gateway.auth.jwks import IssuerKeys
from gateway.auth.tokens import OwnTokens, Revocations, signing_key

CHALLENGE = 'Bearer realm="trackgate"'
JWKS_PATH = "/.well-known/jwks.json"
CACHE_SECONDS = 60.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Accepted:
    identity: Identity
    until: float  # time.time() after which the token must be verified again
    jti: str | None  # ours only: checked against revocations on every use


def _bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None for another scheme or none."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class BearerAuthenticator:
    name = "bearer"
    consumed = Consumed(headers=frozenset({"authorization"}))

    def __init__(self, own: OwnTokens, issuers: list[IssuerKeys], leeway: float) -> None:
        self.own = own
        self._leeway = leeway
        self._accepted: OrderedDict[bytes, _Accepted] = OrderedDict()
        self._issuers: dict[str, IssuerKeys] = {}
        for issuer in issuers:
            for name in issuer_names(issuer.issuer.issuer):
                self._issuers[name] = issuer

    def challenge(self) -> str:
        return CHALLENGE

    def known_good(self, request: web.Request) -> bool:
        """This token was accepted and is still remembered (the throttle lets it through)."""
        token = _bearer_token(request)
        if token is None:
            return False
        known = self._accepted.get(hashlib.sha256(token.encode()).digest())
        return known is not None and time.time() < known.until

    async def authenticate(self, request: web.Request) -> Identity | None:
        token = _bearer_token(request)
        if token is None:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        now = time.time()
        known = self._accepted.get(digest)
        if known is not None and now < known.until:
            if known.jti is not None and await self.own.is_revoked(known.jti):
                raise AuthenticationFailed("Token has been revoked.", challenge=CHALLENGE_INVALID)
            self._accepted.move_to_end(digest)
            return known.identity
        identity, claims = await self._verify(token)
        exp = claims.get("exp")
        # The verifier checked exp; min() keeps a huge one an int (float() of it would overflow).
        until = min(now + CACHE_SECONDS, exp + self._leeway if isinstance(exp, int | float) else now)
        own = claims.get("iss") == self.own.issuer
        self._accepted[digest] = _Accepted(identity, until, str(claims["jti"]) if own else None)
        while len(self._accepted) > MAX_ENTRIES:
            self._accepted.popitem(last=False)
        return identity

    async def _verify(self, token: str) -> tuple[Identity, dict[str, Any]]:
        try:
            header: dict[str, Any] = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.DecodeError:
            raise AuthenticationFailed("Bearer token is not a JWT.", challenge=CHALLENGE_INVALID) from None
        except (jwt.InvalidTokenError, ValueError):
            # A forged header PyJWT refuses while parsing (kid not a string, unknown crit, a
            # number too long to convert): as invalid as a bad signature, so 401 and a failure.
            raise AuthenticationFailed("Bearer token header is not valid.", challenge=CHALLENGE_INVALID) from None
        if not isinstance(header.get("alg"), str) or not isinstance(header.get("kid", ""), str):
            raise AuthenticationFailed("Bearer token header is not valid.", challenge=CHALLENGE_INVALID)
        issuer = claims.get("iss")
        if issuer == self.own.issuer:
            return await self.own.verify(token, header), claims
        if isinstance(issuer, str) and issuer in self._issuers:
            return await self._issuers[issuer].verify(token, header, self._leeway), claims
        raise AuthenticationFailed("The token's issuer is not trusted.", challenge=CHALLENGE_INVALID)


@contextlib.asynccontextmanager
async def open_bearer(app: web.Application) -> AsyncIterator[BearerAuthenticator]:
    config = app[keys.config]
    engine = app.get(keys.auth_engine)  # None with artifacts_only
    key = await signing_key(config, engine)
    own = OwnTokens(key, config, Revocations(engine))
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
