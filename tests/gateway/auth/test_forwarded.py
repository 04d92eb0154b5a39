"""X-Forwarded-* are believed only from configured proxies, and then only as far as they vouch."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from gateway.forwarded import TrustedProxies

CHAINS = [
    # (id, trusted, peer, X-Forwarded-For values, client address)
    ("nothing-trusted", [], "127.0.0.1", ["1.2.3.4"], "127.0.0.1"),
    ("peer-not-trusted", ["10.0.0.0/8"], "127.0.0.1", ["1.2.3.4"], "127.0.0.1"),
    ("one-proxy", ["127.0.0.1/32"], "127.0.0.1", ["1.2.3.4"], "1.2.3.4"),
    ("two-proxies", ["127.0.0.1/32", "10.0.0.0/8"], "127.0.0.1", ["1.2.3.4, 10.0.0.5"], "1.2.3.4"),
    ("client-spoofs-left-entries", ["127.0.0.1/32"], "127.0.0.1", ["6.6.6.6, 1.2.3.4"], "1.2.3.4"),
    ("several-headers", ["127.0.0.1/32", "10.0.0.0/8"], "127.0.0.1", ["1.2.3.4", "10.0.0.5"], "1.2.3.4"),
    ("garbage", ["127.0.0.1/32"], "127.0.0.1", ["not-an-ip"], "127.0.0.1"),
    ("ipv6-with-port", ["127.0.0.1/32"], "127.0.0.1", ["[2001:db8::1]:4711"], "2001:db8::1"),
    ("all-trusted", ["0.0.0.0/0"], "127.0.0.1", ["10.0.0.1, 10.0.0.2"], "10.0.0.1"),
]


@pytest.mark.parametrize(("trusted", "peer", "chain", "client"), [c[1:] for c in CHAINS], ids=[c[0] for c in CHAINS])
def test_client_address(trusted: list[str], peer: str, chain: list[str], client: str) -> None:
    proxies = TrustedProxies(trusted)
    got = proxies.client_address(peer, chain) if proxies.trusts(peer) else peer
    assert got == client


async def forwarded_at_core(gw: Any, headers: dict[str, str]) -> dict[str, str]:
    async with aiohttp.ClientSession() as s, s.get(gw.url + "/echo", headers=headers) as r:
        received = json.loads(await r.text())["headers"]
    return {k.lower(): v for k, v in received if k.lower().startswith("x-forwarded")}


async def test_untrusted_claims_are_replaced(gateway_factory: Callable[..., Awaitable[Any]]) -> None:
    gw = await gateway_factory()
    seen = await forwarded_at_core(gw, {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https",
                                        "X-Forwarded-Host": "evil.example"})
    assert seen["x-forwarded-for"] == "127.0.0.1" and seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] != "evil.example"


async def test_trusted_proxy_is_believed(gateway_factory: Callable[..., Awaitable[Any]]) -> None:
    gw = await gateway_factory(trusted_proxies="127.0.0.1/32", allowed_hosts="mlflow.example.com")
    seen = await forwarded_at_core(gw, {"X-Forwarded-For": "6.6.6.6, 1.2.3.4", "X-Forwarded-Proto": "https",
                                        "X-Forwarded-Host": "mlflow.example.com"})
    assert seen == {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https",
                    "x-forwarded-host": "mlflow.example.com"}
