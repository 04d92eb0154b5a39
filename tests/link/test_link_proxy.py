"""The gateway's proxy and supervisor tests (tests/gateway), run again with the stand-in core
answering over the framed link instead of HTTP (tests/link/framed_fake_core.py): header
filtering, exact paths, request ids, streamed bodies both ways, a core dying before answering
or mid-body, worker restarts, readiness and drain. The test functions are the very same
objects; only the `gw` / `gateway_factory` fixtures below differ from tests/gateway's."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import keys
from tests.gateway.conftest import Gateway, gateways
from tests.gateway.test_gateway_proxy import (  # noqa: F401  # collected here, run over frames
    test_bodies_with_length_arrive_intact,
    test_chunked_upload_streams_through,
    test_core_dying_before_answering_gives_retryable_503,
    test_core_dying_mid_body_truncates_the_response,
    test_disguised_header_names_are_rejected_outright,
    test_every_response_carries_the_version,
    test_forwarding_headers_say_what_the_gateway_saw,
    test_head_keeps_the_content_length,
    test_header_forwarding,
    test_large_response_streams_back,
    test_path_and_query_reach_the_core_exactly,
    test_request_id_is_forwarded_and_echoed,
    test_status_and_body_pass_through,
)
from tests.gateway.test_gateway_supervisor import (  # noqa: F401
    test_cleanup_drains_in_flight_requests_then_stops_the_workers,
    test_drain_waits_for_a_request_body_still_arriving,
    test_every_worker_slot_is_kept_filled,
    test_killed_worker_gives_503_then_a_new_worker_serves,
    test_readyz_follows_the_core_database,
)

FRAMED_FAKE_CORE = [sys.executable, str(Path(__file__).with_name("framed_fake_core.py"))]


@pytest.fixture
async def gateway_factory() -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    async with gateways(FRAMED_FAKE_CORE) as make:

        async def framed(port: int | None = None, **settings: Any) -> Gateway:
            gateway = await make(port, **settings)
            # The point of this module: the proxy forwards over frames, not over its HTTP fallback.
            assert gateway.app[keys.core_link] is not None
            return gateway

        yield framed


@pytest.fixture
async def gw(gateway_factory: Callable[..., Awaitable[Gateway]]) -> Gateway:
    return await gateway_factory()


async def test_compressed_request_body_arrives_as_sent(gw: Gateway) -> None:
    """tests/gateway's version has the stand-in core decompress (aiohttp's HTTP server does by
    default); a framed core, like the real worker (auto_decompress=False), gets the bytes as sent."""
    compressed = gzip.compress(b'{"name": "exp"}' * 1000)
    async with (
        aiohttp.ClientSession() as client,
        client.post(gw.url + "/echo", data=compressed, headers={"Content-Encoding": "gzip"}) as resp,
    ):
        got = await resp.json()
    assert got["body_sha256"] == hashlib.sha256(compressed).hexdigest()
    assert ["Content-Encoding", "gzip"] in got["headers"]


async def test_requests_spread_over_every_worker(gateway_factory: Any) -> None:
    """Which worker accepts a connection is the kernel's choice; the pool keeps connecting until
    it reaches every live worker (each names its pid), then sends each request to the least busy."""
    gw = await gateway_factory(workers=3)
    link = gw.app[keys.core_link]
    supervisor = gw.app[keys.supervisor]
    async with aiohttp.ClientSession() as client:

        async def pid() -> int:
            async with client.get(gw.url + "/pid") as resp:
                return int((await resp.json())["pid"])

        for _ in range(100):
            await pid()
            if {c.pid for c in link.connections} == set(supervisor.worker_pids):
                break
            await asyncio.sleep(0.05)
        assert {c.pid for c in link.connections} == set(supervisor.worker_pids)

        async def slow() -> None:
            async with client.get(gw.url + "/slow?seconds=0.5") as resp:
                assert resp.status == 200

        busy = [asyncio.create_task(slow()) for _ in range(9)]
        await asyncio.sleep(0.25)
        assert sorted(link.load[p] for p in supervisor.worker_pids) == [3, 3, 3]
        await asyncio.gather(*busy)
