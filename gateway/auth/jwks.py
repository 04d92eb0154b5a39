"""External JWT issuers: keys by OIDC discovery, cached, refreshed on rotation; token checks.

- The issuer's key set is fetched on first use (an unreachable issuer does not stop startup),
  cached for `jwks_cache_ttl`, and the last good set is kept when a refresh fails.
- A token whose `kid` is not in the cached set triggers one refresh, at most every
  MIN_REFRESH seconds (a stream of made-up kids cannot make us hammer the issuer).
- The algorithms a key may verify follow from the key itself (RSA: RS*/PS*; EC: the curve's
  ES*; OKP: EdDSA); symmetric (`oct`) keys are never used. The token's `alg` header only has to
  be one of those, so `none`, HS256-with-the-public-key and cross-type tricks all fail.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import ssl
import time
from typing import Any

import aiohttp
import jwt

from gateway.auth.base import AuthenticationFailed, Identity
from gateway.auth.claims import CHALLENGE_INVALID, bearer_identity, issuer_names
from gateway.config import JwtIssuer

log = logging.getLogger("trackgate.auth.jwks")

MIN_REFRESH = 30.0
FETCH_TIMEOUT = 10.0
_RSA = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}


def allowed_algorithms(jwk: dict[str, Any]) -> tuple[str, ...]:
    kty = jwk.get("kty")
    if kty == "RSA":
        algs: tuple[str, ...] = _RSA
    elif kty == "EC" and jwk.get("crv") in _EC:
        algs = (_EC[jwk["crv"]],)
    elif kty == "OKP" and jwk.get("crv") in ("Ed25519", "Ed448"):
        algs = ("EdDSA",)
    else:
        return ()  # oct (HMAC) and anything unknown: never
    declared = jwk.get("alg")
    return (declared,) if declared in algs else algs if declared is None else ()


class IssuerKeys:
    def __init__(
        self, issuer: JwtIssuer, session: aiohttp.ClientSession, ttl: float, min_refresh: float = MIN_REFRESH
    ) -> None:
        self.issuer = issuer
        self._min_refresh = min_refresh
        self._session = session
        self._ttl = ttl
        self._ssl: ssl.SSLContext | bool = True
        if issuer.ca_file:  # a private CA, e.g. a Kubernetes API server's
            self._ssl = ssl.create_default_context(cafile=issuer.ca_file)
        self._keys: dict[str | None, tuple[Any, tuple[str, ...]]] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _get_json(self, url: str) -> Any:
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
        async with self._session.get(url, ssl=self._ssl, timeout=timeout) as resp:
            if resp.status != 200:
                raise ValueError(f"{url} answered HTTP {resp.status}")
            return await resp.json(content_type=None)

    async def _refresh(self) -> None:
        self._attempted_at = time.monotonic()
        try:
            jwks_uri = self.issuer.jwks_uri
            if jwks_uri is None:
                base = self.issuer.issuer.rstrip("/")
                doc = await self._get_json(base + "/.well-known/openid-configuration")
                if str(doc.get("issuer", "")).rstrip("/") != self.issuer.issuer.rstrip("/"):
                    raise ValueError(f"discovery document names issuer {doc.get('issuer')!r}")
                jwks_uri = str(doc["jwks_uri"])
            data = await self._get_json(jwks_uri)
            keys: dict[str | None, tuple[Any, tuple[str, ...]]] = {}
            for jwk in data.get("keys", []):
                algs = allowed_algorithms(jwk)
                if not algs or jwk.get("use", "sig") != "sig":
                    continue
                keys[jwk.get("kid")] = (jwt.PyJWK.from_dict(jwk, algorithm=algs[0]).key, algs)
            self._keys, self._fetched_at = keys, time.monotonic()
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, jwt.PyJWKError) as exc:
            log.warning(
                "cannot fetch the keys of %s (%s: %s); keeping %d known key(s)",
                self.issuer.issuer, type(exc).__name__, exc, len(self._keys),
            )

    @property
    def has_keys(self) -> bool:
        """Whether a usable key set was ever fetched (False: the issuer has been unreachable)."""
        return bool(self._keys)

    async def key(self, kid: str | None) -> tuple[Any, tuple[str, ...]]:
        now = time.monotonic()
        stale = now - self._fetched_at > self._ttl
        unknown = kid not in self._keys and not (kid is None and len(self._keys) == 1)
        # A stale set is retried every second while fetching fails; an unknown kid (rotation, or
        # a forged header) refreshes at most every min_refresh seconds.
        if (stale or unknown) and now - self._attempted_at >= (1.0 if stale else self._min_refresh):
            async with self._lock:
                if self._attempted_at < now:  # nobody refreshed while we waited
                    await self._refresh()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if kid not in self._keys:
            raise AuthenticationFailed("Token signed by an unknown key.", challenge=CHALLENGE_INVALID)
        return self._keys[kid]

    async def verify(self, token: str, header: dict[str, Any], leeway: float) -> Identity:
        key, algorithms = await self.key(header.get("kid"))
        issuer = self.issuer
        try:
            claims = jwt.decode(
                token, key, algorithms=list(algorithms), audience=list(issuer.audience),
                issuer=list(issuer_names(issuer.issuer)), leeway=leeway,
                options={"require": ["iss", "aud", "exp"]},
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationFailed(f"Invalid token: {exc}.", challenge=CHALLENGE_INVALID) from None
        subject = claims.get(issuer.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise AuthenticationFailed(f"Token has no {issuer.subject_claim!r} claim naming the caller.",
                                       challenge=CHALLENGE_INVALID)
        if not any(fnmatch.fnmatchcase(subject, pattern) for pattern in issuer.allowed_subjects):
            raise AuthenticationFailed(f"The token's subject is not allowed here ({issuer.subject_claim} {subject!r}).",
                                       challenge=CHALLENGE_INVALID)
        return bearer_identity(subject, claims.get(issuer.email_claim), claims.get(issuer.groups_claim))
