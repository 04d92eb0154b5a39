"""Bearer JWTs through a real gateway on loopback: trackgate's own tokens and an external issuer's.

The external issuer here is a LOOPBACK STAND-IN (an aiohttp app serving discovery and a JWKS
with keys the test controls, so key rotation can be staged); the end-to-end tests use a real
OpenID provider (oidc-provider) for the same path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jwt
import pytest
import sqlalchemy as sa
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway import keys
from gateway.auth.signing import load_private_key
from tests.gateway.auth.support import claims, ed25519_pem, mint, unsigned

OWN_KEY = ed25519_pem()
OTHER_KEY = ed25519_pem()
OWN_KID = load_private_key(OWN_KEY).kid


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with(secret: bytes, **overrides: Any) -> str:
    """A token "signed" with HMAC using a public key as the secret: the HS/RS confusion attack."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": OWN_KID}).encode())
    payload = _b64(json.dumps(claims(**overrides)).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


class Issuer:
    """The loopback stand-in issuer: RSA keys it can rotate, and a count of JWKS fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {"k1": rsa.generate_private_key(65537, 2048)}
        self.fetches = 0
        self.url = ""

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": out}

    def token(self, kid: str = "k1", algorithm: str = "RS256", **overrides: Any) -> str:
        defaults = {"iss": self.url, "aud": "https://trackgate.test", "sub": "repo:org/app:ref:refs/heads/main",
                    "email": "ci@example.test"}
        body = claims(**{**defaults, **overrides})
        return jwt.encode(body, self.keys[kid], algorithm=algorithm, headers={"kid": kid})

    def app(self) -> web.Application:
        async def discovery(request: web.Request) -> web.Response:
            return web.json_response({"issuer": self.url, "jwks_uri": self.url + "/jwks"})

        async def jwks(request: web.Request) -> web.Response:
            self.fetches += 1
            return web.json_response(self.jwks())

        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", discovery)
        app.router.add_get("/jwks", jwks)
        return app


@pytest.fixture
async def issuer(aiohttp_server: Any) -> Issuer:
    stand_in = Issuer()
    server = await aiohttp_server(stand_in.app(), host="127.0.0.1")
    stand_in.url = str(server.make_url("")).rstrip("/")
    return stand_in


@pytest.fixture
async def gw(gateway_factory: Callable[..., Awaitable[Any]], tracking_db: str, issuer: Issuer) -> Any:
    issuers = json.dumps([{"issuer": issuer.url, "audience": "https://trackgate.test",
                           "subject_claim": "sub", "allowed_subjects": ["repo:org/*"]}])
    gateway = await gateway_factory(auth="bearer", backend_store_uri=tracking_db, token_signing_key=OWN_KEY,
                                    jwt_issuers=issuers)
    gateway.db = tracking_db
    return gateway


async def call(gw: Any, token: str) -> tuple[int, dict[str, Any], list[str]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/echo", headers=headers) as r:
        return r.status, json.loads(await r.text()), r.headers.getall("WWW-Authenticate", [])


def seen_subject(body: dict[str, Any]) -> str | None:
    return next((v for k, v in body.get("headers", []) if k.lower() == "x-trackgate-subject"), None)


async def test_own_token_is_accepted(gw: Any) -> None:
    status, body, _ = await call(gw, mint(OWN_KEY, headers={"kid": OWN_KID}))
    assert status == 200 and seen_subject(body) == "ci-bot"
    assert all(k.lower() != "authorization" for k, _ in body["headers"])


REFUSALS = [
    ("expired", lambda: mint(OWN_KEY, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200), "expired"),
    ("not-yet-valid", lambda: mint(OWN_KEY, nbf=int(time.time()) + 3600), "not yet valid"),
    ("wrong-audience", lambda: mint(OWN_KEY, aud="someone-else"), "audience"),
    ("untrusted-issuer", lambda: mint(OWN_KEY, iss="https://evil.example"), "issuer is not trusted"),
    ("alg-none", lambda: unsigned(), "alg value is not allowed"),
    ("wrong-key-same-kid", lambda: mint(OTHER_KEY, headers={"kid": OWN_KID}), "Signature verification failed"),
    ("wrong-key-no-kid", lambda: mint(OTHER_KEY), "Signature verification failed"),
    ("wrong-key-other-kid", lambda: mint(OTHER_KEY, headers={"kid": "other"}), "unknown key"),
    ("hs256-with-public-key-pem", lambda: hs256_with(
        load_private_key(OWN_KEY).public.public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)),
     "alg value is not allowed"),
    ("hs256-with-public-key-raw", lambda: hs256_with(
        load_private_key(OWN_KEY).public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)),
     "alg value is not allowed"),
    ("missing-exp", lambda: mint(OWN_KEY, exp=None), "exp"),
    ("missing-jti", lambda: mint(OWN_KEY, jti=None), "jti"),
    ("missing-sub", lambda: mint(OWN_KEY, sub=None), "sub"),
    ("not-a-jwt", lambda: "not-a-jwt", "not a JWT"),
    ("empty", lambda: "", "not a JWT"),
    ("tampered-payload", lambda: _tamper(mint(OWN_KEY)), "Signature verification failed"),
]


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["sub"] = "admin"
    return f"{header}.{_b64(json.dumps(body).encode())}.{signature}"


@pytest.mark.parametrize(("make", "reason"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
async def test_own_token_refusals(gw: Any, make: Callable[[], str], reason: str) -> None:
    status, body, challenges = await call(gw, make())
    assert status == 401
    assert body["error_code"] == "UNAUTHENTICATED" and reason.lower() in body["message"].lower()
    assert challenges == ['Bearer realm="trackgate", error="invalid_token"']


async def test_revoked_token_is_refused(gw: Any) -> None:
    from tracking_core.store.tables import auth_tokens

    token = mint(OWN_KEY, jti="revoke-me")
    assert (await call(gw, token))[0] == 200
    engine = sa.create_engine(gw.db)
    with engine.begin() as conn:
        now = int(time.time() * 1000)
        conn.execute(auth_tokens.insert().values(jti="revoke-me", subject="ci-bot", issued_time=now,
                                                 expires_time=now + 600_000, revoked_time=now))
    engine.dispose()
    chain = gw.app[keys.auth_chain]
    chain.authenticators[0].own._revocations._loaded_at = float("-inf")  # the next request re-reads now
    status, body, _ = await call(gw, token)
    assert status == 401 and "revoked" in body["message"]


async def test_jwks_publishes_the_public_key_only(gw: Any) -> None:
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/.well-known/jwks.json") as r:
        assert r.status == 200
        keys = (await r.json())["keys"]
    assert [(k["kid"], k["alg"], k["kty"]) for k in keys] == [(OWN_KID, "EdDSA", "OKP")]
    assert all("d" not in k for k in keys)
    # What it publishes verifies our tokens.
    public = jwt.PyJWK.from_dict(keys[0]).key
    assert jwt.decode(mint(OWN_KEY), public, algorithms=["EdDSA"], audience="trackgate")["sub"] == "ci-bot"


async def test_external_issuer_token_is_accepted(gw: Any, issuer: Issuer) -> None:
    status, body, _ = await call(gw, issuer.token())
    assert status == 200 and seen_subject(body) == "repo:org/app:ref:refs/heads/main"
    assert ("X-Trackgate-Email", "ci@example.test") in [tuple(h) for h in body["headers"]]


async def test_external_issuer_refusals(gw: Any, issuer: Issuer) -> None:
    public_pem = issuer.keys["k1"].public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    payload = _b64(json.dumps(claims(iss=issuer.url, aud="https://trackgate.test")).encode())
    confused = f"{header}.{payload}.{_b64(hmac.new(public_pem, f'{header}.{payload}'.encode(), 'sha256').digest())}"
    cases = {
        "wrong-audience": (issuer.token(aud="https://other.test"), "audience"),
        "expired": (issuer.token(exp=int(time.time()) - 600), "expired"),
        "hs256-with-rsa-public-key": (confused, "alg value is not allowed"),
        "no-subject": (issuer.token(sub=None), "'sub'"),
        "subject-not-allowed": (issuer.token(sub="repo:stranger/app:ref:refs/heads/main"), "not allowed"),
        "unknown-kid": (jwt.encode(claims(iss=issuer.url, aud="https://trackgate.test"),
                                   issuer.keys["k1"], algorithm="RS256", headers={"kid": "nope"}), "unknown key"),
    }
    for name, (token, reason) in cases.items():
        status, body, _ = await call(gw, token)
        assert (status, reason.lower() in body["message"].lower()) == (401, True), (name, body)


async def test_rotated_issuer_key_is_fetched_once(gw: Any, issuer: Issuer) -> None:
    assert (await call(gw, issuer.token()))[0] == 200
    fetches = issuer.fetches
    issuer.keys["k2"] = rsa.generate_private_key(65537, 2048)
    keys_of = gw.app[keys.auth_chain].authenticators[0]._issuers[issuer.url]
    keys_of._attempted_at = float("-inf")  # as if min_refresh had passed since the last fetch
    assert (await call(gw, issuer.token(kid="k2")))[0] == 200
    assert issuer.fetches == fetches + 1
    # A made-up kid right after: refused without another fetch (rate limit).
    forged = jwt.encode(claims(iss=issuer.url, aud="https://trackgate.test"), issuer.keys["k2"],
                        algorithm="RS256", headers={"kid": "made-up"})
    assert (await call(gw, forged))[0] == 401
    assert issuer.fetches == fetches + 1
