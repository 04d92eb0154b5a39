"""Talking to an OpenID Connect provider: discovery, the code exchange, ID-token validation.

authlib builds the protocol messages (it has no aiohttp client, so its helpers are used and the
HTTP goes through one aiohttp session); PyJWT verifies ID tokens with the provider's keys, held by
the same key cache as bearer-token issuers (`gateway.auth.jwks.IssuerKeys`: an unknown `kid`
refetches the set at most every JWKS_REFETCH_INTERVAL, so forged kids cannot make us hammer the
provider). Works with any issuer that publishes discovery: Google, Entra ID (a tenant's v2.0
issuer), Keycloak (a realm's issuer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import jwt
from authlib.common.urls import add_params_to_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.parameters import (  # type: ignore[import-untyped]
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]

from gateway.auth.base import AuthenticationFailed
from gateway.auth.claims import issuer_names
from gateway.auth.jwks import IssuerKeys
from gateway.config import Config, JwtIssuer

log = logging.getLogger("trackgate.auth.oidc")

DISCOVERY_TTL = 3600.0
JWKS_TTL = 3600.0
JWKS_REFETCH_INTERVAL = 30.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)  # a hung provider must not hang sign-on for minutes
LEEWAY = 60  # seconds of clock skew tolerated on exp/iat
# Asymmetric algorithms only: an HS256 ID token would be "signed" with our own client secret, and
# `none` is no signature at all (RFC 8725 §2.1). The list never comes from the token's header.
ID_TOKEN_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


class ProviderError(Exception):
    """The provider could not be reached or answered something unusable (502 to the user)."""


class SignOnRefused(Exception):
    """This sign-on must not succeed; the message is safe to show the user (no tokens in it)."""


class OIDCClient:
    """One provider, as configured. Open it with `async with` (it owns an HTTP session)."""

    def __init__(self, config: Config) -> None:
        assert config.oidc_issuer_url and config.oidc_client_id and config.oidc_client_secret
        self.issuer = config.oidc_issuer_url.rstrip("/")
        self.client_id = config.oidc_client_id
        self._secret = config.oidc_client_secret
        self.scopes = config.oidc_scopes
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: IssuerKeys | None = None  # made once discovery has named the jwks_uri
        self._lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OIDCClient:
        self._http = aiohttp.ClientSession(timeout=HTTP_TIMEOUT, cookie_jar=aiohttp.DummyCookieJar())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()

    # -- discovery and keys -----------------------------------------------------------------------

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached for DISCOVERY_TTL)."""
        if self._metadata is None or time.monotonic() - self._metadata_at > DISCOVERY_TTL:
            async with self._lock:
                if self._metadata is None or time.monotonic() - self._metadata_at > DISCOVERY_TTL:
                    doc = await self._get_json(self.issuer + "/.well-known/openid-configuration")
                    # OIDC Discovery §4.3: the document must name exactly the issuer we asked.
                    if str(doc.get("issuer", "")).rstrip("/") != self.issuer:
                        raise ProviderError(f"the discovery document of {self.issuer} names another issuer")
                    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                        if not isinstance(doc.get(name), str):
                            raise ProviderError(f"the discovery document of {self.issuer} has no {name}")
                    self._metadata, self._metadata_at = doc, time.monotonic()
        return self._metadata

    async def _key_cache(self) -> IssuerKeys:
        if self._keys is None:
            jwks_uri = (await self.metadata())["jwks_uri"]
            assert self._http is not None
            provider = JwtIssuer(self.issuer, (self.client_id,), jwks_uri=jwks_uri, allowed_subjects=("*",))
            self._keys = IssuerKeys(provider, self._http, JWKS_TTL, min_refresh=JWKS_REFETCH_INTERVAL)
        return self._keys

    # -- the authorization code flow --------------------------------------------------------------

    async def authorization_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        endpoint = (await self.metadata())["authorization_endpoint"]
        return str(
            prepare_grant_uri(
                endpoint,
                self.client_id,
                "code",
                redirect_uri,
                scope=" ".join(self.scopes),
                state=state,
                nonce=nonce,
                code_challenge=create_s256_code_challenge(verifier),
                code_challenge_method="S256",
            )
        )

    async def exchange_code(self, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """Trade the authorization code (and the PKCE verifier) for tokens."""
        body = prepare_token_request("authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=verifier)
        return await self._token_request(body)

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        return await self._token_request(prepare_token_request("refresh_token", refresh_token=refresh_token))

    async def _token_request(self, body: str) -> dict[str, Any]:
        meta = await self.metadata()
        assert self._http is not None
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if "client_secret_basic" in methods:
            # RFC 6749 §2.3.1: id and secret are form-encoded before they go into Basic auth.
            secret = quote(self._secret.reveal(), safe="")
            headers["Authorization"] = aiohttp.encode_basic_auth(quote(self.client_id, safe=""), secret)
        else:
            body += "&" + urlencode({"client_id": self.client_id, "client_secret": self._secret.reveal()})
        try:
            async with self._http.post(meta["token_endpoint"], data=body, headers=headers) as resp:
                payload = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ProviderError(f"the token endpoint of {self.issuer} failed: {type(exc).__name__}") from exc
        if status == 400 and isinstance(payload, dict) and payload.get("error") == "invalid_grant":
            # A used, expired or foreign code (or refresh token): the user simply starts again.
            raise SignOnRefused("The provider did not accept this sign-on (the code was used or expired).")
        if status != 200 or not isinstance(payload, dict):
            error = payload.get("error") if isinstance(payload, dict) else None
            raise ProviderError(f"the token endpoint of {self.issuer} answered HTTP {status} ({error})")
        return payload

    async def validate_id_token(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        """The claims of a valid ID token: signature by the issuer's keys, iss, aud (and azp), exp,
        iat, sub and, at sign-on, the nonce we sent. Raise SignOnRefused otherwise."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.InvalidTokenError:
            raise SignOnRefused("The provider's ID token is malformed.") from None
        if header.get("alg") not in ID_TOKEN_ALGORITHMS:
            raise SignOnRefused("The provider's ID token is not signed with an accepted algorithm.")
        kid, keys = header.get("kid"), await self._key_cache()
        try:
            key, key_algorithms = await keys.key(kid if isinstance(kid, str) else None)
        except AuthenticationFailed:
            if not keys.has_keys:
                raise ProviderError(f"the key set of {self.issuer} cannot be read") from None
            raise SignOnRefused("The provider's ID token is signed by a key it does not publish.") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token, key, algorithms=[a for a in key_algorithms if a in ID_TOKEN_ALGORITHMS],
                audience=self.client_id, issuer=list(issuer_names(self.issuer)), leeway=LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.InvalidSignatureError:
            raise SignOnRefused("The provider's ID token does not verify.") from None
        except jwt.InvalidTokenError as exc:
            raise SignOnRefused(f"The provider's ID token is not valid here ({exc}).") from None
        if nonce is not None and claims.get("nonce") != nonce:
            raise SignOnRefused("The provider's ID token is not valid here (its nonce is not the one sent).")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise SignOnRefused("The provider's ID token was issued to another client.")
        return claims

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """Claims from the userinfo endpoint ({} when the provider has none)."""
        endpoint = (await self.metadata()).get("userinfo_endpoint")
        if not endpoint:
            return {}
        return await self._get_json(endpoint, {"Authorization": f"Bearer {access_token}"})

    async def end_session_url(self, post_logout_redirect_uri: str) -> str | None:
        endpoint = (await self.metadata()).get("end_session_endpoint")
        if not endpoint:
            return None
        # RP-Initiated Logout 1.0: client_id stands in for the id_token_hint we do not keep.
        params = [("client_id", self.client_id), ("post_logout_redirect_uri", post_logout_redirect_uri)]
        return str(add_params_to_uri(endpoint, params))

    async def _get_json(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        assert self._http is not None
        try:
            async with self._http.get(url, headers=headers) as resp:
                if resp.status != 200:
                    raise ProviderError(f"{url} answered HTTP {resp.status}")
                doc = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ProviderError(f"{url} cannot be read: {type(exc).__name__}") from exc
        if not isinstance(doc, dict):
            raise ProviderError(f"{url} is not a JSON object")
        return doc
