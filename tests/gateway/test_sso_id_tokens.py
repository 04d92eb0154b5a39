"""ID-token validation at sign-on, against the real OpenID provider's discovery and key set, with
tokens signed by the provider's own key (and forgeries of them): every check that stands between a
token and a session is made to fail once."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.auth.oidc_client import OIDCClient, SignOnRefused
from gateway.config import load
from tests.support.oidc_fixture import OIDCProvider, oidc_provider

__all__ = ["oidc_provider"]

NONCE = "n-0S6_WzA2Mj"


@pytest.fixture
async def client(oidc_provider: OIDCProvider) -> AsyncIterator[OIDCClient]:
    config = load({
        "oidc_issuer_url": oidc_provider.issuer,
        "oidc_client_id": oidc_provider.client_id,
        "oidc_client_secret": oidc_provider.client_secret,
        "oidc_email_domains": "example.test",
        "cookie_secret": base64.b64encode(bytes(32)).decode(),
    }, {})
    async with OIDCClient(config) as c:
        yield c


def claims(provider: OIDCProvider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": provider.issuer, "aud": provider.client_id, "sub": "alice", "iat": now, "exp": now + 300,
            "nonce": NONCE, "email": "alice@example.test"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(provider: OIDCProvider, body: dict[str, Any], *, key: Any = None, kid: str | None = None,
           alg: str = "RS256") -> str:
    return jwt.encode(body, key or provider.signing_key, algorithm=alg,
                      headers={"kid": kid if kid is not None else provider.signing_kid})


async def test_a_token_the_provider_signed_for_us_is_accepted(client: OIDCClient, oidc_provider: OIDCProvider) -> None:
    got = await client.validate_id_token(signed(oidc_provider, claims(oidc_provider)), NONCE)
    assert got["sub"] == "alice" and got["email"] == "alice@example.test"


async def test_several_audiences_need_us_as_the_authorized_party(
    client: OIDCClient, oidc_provider: OIDCProvider
) -> None:
    audiences = [oidc_provider.client_id, "another-client"]
    with pytest.raises(SignOnRefused, match="another client"):
        await client.validate_id_token(signed(oidc_provider, claims(oidc_provider, aud=audiences)), NONCE)
    ours = claims(oidc_provider, aud=audiences, azp=oidc_provider.client_id)
    assert (await client.validate_id_token(signed(oidc_provider, ours), NONCE))["sub"] == "alice"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"nonce": "another"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"aud": "another-client"}, "(?i)audience"),
        ({"iss": "http://127.0.0.1:1/evil"}, "(?i)issuer"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "(?i)expired"),
        ({"iat": None}, "iat"),
        ({"sub": None}, "sub"),
        ({"exp": None}, "exp"),
    ],
    ids=["wrong-nonce", "no-nonce", "other-audience", "other-issuer", "expired", "no-iat", "no-sub", "no-exp"],
)
async def test_a_claim_that_fails_a_check_is_refused(
    client: OIDCClient, oidc_provider: OIDCProvider, change: dict[str, Any], reason: str
) -> None:
    with pytest.raises(SignOnRefused, match=reason):
        await client.validate_id_token(signed(oidc_provider, claims(oidc_provider, **change)), NONCE)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the short secret is the point
async def test_forged_signatures_and_algorithms_are_refused(client: OIDCClient, oidc_provider: OIDCProvider) -> None:
    body = claims(oidc_provider)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(SignOnRefused, match="does not verify"):  # the provider's kid, another key
        await client.validate_id_token(signed(oidc_provider, body, key=stranger), NONCE)
    with pytest.raises(SignOnRefused, match="does not publish"):
        await client.validate_id_token(signed(oidc_provider, body, key=stranger, kid="made-up"), NONCE)
    # HS256 "signed" with the client secret we share with the provider: never an ID token.
    with pytest.raises(SignOnRefused, match="accepted algorithm"):
        await client.validate_id_token(signed(oidc_provider, body, key=oidc_provider.client_secret, alg="HS256"),
                                       NONCE)
    unsigned = jwt.encode(body, None, algorithm="none", headers={"kid": oidc_provider.signing_kid})
    with pytest.raises(SignOnRefused, match="accepted algorithm"):
        await client.validate_id_token(unsigned, NONCE)
    with pytest.raises(SignOnRefused, match="malformed"):
        await client.validate_id_token("not-a-token", NONCE)
