"""Throttling of repeated refused credentials, on a gateway of its own (it locks 127.0.0.1 out)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from gateway.auth import throttle
from tests.gateway.auth.support import PASSWORD, basic


async def test_repeated_failures_from_one_address_are_throttled(
    gateway_factory: Callable[..., Awaitable[Any]], tracking_db: str
) -> None:
    gw = await gateway_factory(auth="basic", backend_store_uri=tracking_db)
    async with aiohttp.ClientSession() as s:
        for _ in range(throttle.MAX_FAILURES):
            async with s.get(gw.url + "/echo", headers={"Authorization": basic("alice", "nope")}) as r:
                assert r.status == 401
        async with s.get(gw.url + "/echo", headers={"Authorization": basic("alice", PASSWORD)}) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
            assert (await r.json())["error_code"] == "RESOURCE_EXHAUSTED"
        async with s.get(gw.url + "/healthz") as r:
            assert r.status == 200  # no credential, no throttle
