"""Finding 4 of issue 13: forged, malformed bearer tokens are a 401 (never a 500) and count as
failed credentials for the throttle, like a wrong password."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from gateway.auth import throttle
from tests.gateway.auth.support import claims, ed25519_pem


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: Any, payload: Any = None, signature: str = "c2ln") -> str:
    """A token with any header and payload (JSON values, or raw text) and a made-up signature."""
    def part(value: Any) -> str:
        return _b64(value.encode() if isinstance(value, str) else json.dumps(value).encode())

    return f"{part(header)}.{part(claims() if payload is None else payload)}.{signature}"


# (id, token): every one is a credential of the bearer kind that is not valid.
FORGERIES = [
    ("eddsa-kid-int", forged({"alg": "EdDSA", "kid": 1})),
    ("kid-list", forged({"alg": "EdDSA", "kid": ["a"]})),
    ("kid-null", forged({"alg": "EdDSA", "kid": None})),
    ("kid-object", forged({"alg": "EdDSA", "kid": {"a": 1}})),
    ("crit-unknown", forged({"alg": "EdDSA", "crit": ["x"], "x": 1})),
    ("crit-not-list", forged({"alg": "EdDSA", "crit": "x"})),
    ("alg-int", forged({"alg": 5})),
    ("alg-missing", forged({"typ": "JWT"})),
    ("header-list", forged([1, 2])),
    ("header-not-json", forged("{not json")),
    ("payload-list", forged({"alg": "EdDSA"}, [1])),
    ("payload-not-json", forged({"alg": "EdDSA"}, "nope")),
    ("exp-huge", forged({"alg": "EdDSA"}, claims(exp=10**400))),
    ("exp-string", forged({"alg": "EdDSA"}, claims(exp="soon"))),
    ("iss-list", forged({"alg": "EdDSA"}, claims(iss=["trackgate"]))),
    ("iss-object", forged({"alg": "EdDSA"}, claims(iss={"a": 1}))),
    ("two-parts", "a.b"),
    ("bad-base64", "!!!.###.$$$"),
    ("non-ascii", "é.é.é"),
    ("huge-header-number", forged('{"alg": "EdDSA", "kid": ' + "9" * 5000 + "}")),
]


@pytest.fixture
async def gw(gateway_factory: Callable[..., Awaitable[Any]], tracking_db: str) -> Any:
    return await gateway_factory(auth="bearer", backend_store_uri=tracking_db, token_signing_key=ed25519_pem())


@pytest.mark.parametrize("token", [f[1] for f in FORGERIES], ids=[f[0] for f in FORGERIES])
async def test_forged_token_is_401(gw: Any, token: str) -> None:
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/echo", headers={"Authorization": f"Bearer {token}"}) as r:
        body = await r.json()
        assert r.status == 401, body
        assert body["error_code"] == "UNAUTHENTICATED"
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="trackgate", error="invalid_token"'


async def test_forged_tokens_are_throttled(gw: Any) -> None:
    token = forged({"alg": "EdDSA", "kid": 1})
    async with aiohttp.ClientSession() as s:
        statuses = []
        for _ in range(throttle.MAX_FAILURES + 1):
            async with s.get(gw.url + "/echo", headers={"Authorization": f"Bearer {token}"}) as r:
                statuses.append(r.status)
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}
