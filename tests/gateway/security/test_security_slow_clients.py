"""Finding 3 of issue 13: slow and greedy clients cannot hold the gateway's connections. Raw
sockets on loopback play slowloris (a partial request line, headers a byte at a time, a body
that stalls), an idle client and a connection flood; short timeouts keep the test quick."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

LIMITS = {"header_read_timeout": "1", "body_read_timeout": "1", "keepalive_timeout": "2"}


async def connect(gw: Any, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", gw.port, local_addr=(source, 0))


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed the connection within `seconds`, and what it said first."""
    received = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            chunk = await asyncio.wait_for(reader.read(4096), deadline - time.monotonic())
            if not chunk:
                return True, received
            received += chunk
    except TimeoutError:
        return False, received
    except ConnectionResetError:
        return True, received
    return False, received


@pytest.fixture
async def gw(gateway_factory: Callable[..., Awaitable[Any]]) -> Any:
    return await gateway_factory(**LIMITS)


async def test_partial_request_line_is_closed(gateway_factory: Callable[..., Awaitable[Any]]) -> None:
    # Keep-alive well past the header timeout: aiohttp's keep-alive close is silent, and on a loaded
    # machine it could otherwise beat the sweep that answers 408.
    gw = await gateway_factory(**{**LIMITS, "keepalive_timeout": "30"})
    reader, writer = await connect(gw)
    writer.write(b"GET /echo HT")
    closed, said = await closed_within(reader, 4)
    assert closed and said.startswith(b"HTTP/1.1 408")
    writer.close()


async def test_headers_trickled_a_byte_at_a_time_are_closed(gw: Any) -> None:
    reader, writer = await connect(gw)
    started = time.monotonic()
    closed = False
    for byte in b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        if reader.at_eof():
            closed = True
            break
        await asyncio.sleep(0.1)
    closed = closed or (await closed_within(reader, 3))[0]
    assert closed and time.monotonic() - started < 5  # aiohttp's keep-alive timer restarted at every byte
    writer.close()


async def test_silent_connection_is_closed(gw: Any) -> None:
    reader, writer = await connect(gw)
    assert (await closed_within(reader, 4))[0]
    writer.close()


async def test_idle_keep_alive_is_closed(gw: Any) -> None:
    reader, writer = await connect(gw)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert (await reader.readuntil(b"OK")).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    assert (await closed_within(reader, 6))[0]
    assert time.monotonic() - started >= 1.5  # keep-alive, not the header timeout, closed it
    writer.close()


async def test_stalled_body_is_closed_but_a_slow_upload_is_not(gw: Any) -> None:
    reader, writer = await connect(gw)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    assert (await closed_within(reader, 5))[0]
    writer.close()
    # 100 bytes in ten pieces, 0.5 s apart: slower in total than the body timeout, never stalled that long.
    reader, writer = await connect(gw)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\nConnection: close\r\n\r\n")
    for _ in range(10):
        await asyncio.sleep(0.5)
        writer.write(b"y" * 10)
    response = await asyncio.wait_for(reader.read(), 10)
    assert response.startswith(b"HTTP/1.1 200") and b'"body_size": 100' in response
    writer.close()


async def test_connection_caps_per_address_and_in_all(gateway_factory: Callable[..., Awaitable[Any]],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    gw = await gateway_factory(max_connections_per_address="5", max_connections="8", header_read_timeout="30")
    caplog.set_level(logging.WARNING, logger="trackgate.limits")
    held = [await connect(gw) for _ in range(5)]
    refused = []
    for _ in range(20):  # a flood past the cap: each refused at once, with one log line for all
        reader, writer = await connect(gw)
        refused.append((await closed_within(reader, 3), writer))
    assert all(closed and said.startswith(b"HTTP/1.1 503") for (closed, said), _ in refused)
    # Another address still gets in, up to the total cap.
    others = [await connect(gw, "127.0.0.2") for _ in range(3)]
    others[0][1].write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert (await others[0][0].readuntil(b"OK")).startswith(b"HTTP/1.1 200")
    reader, writer = await connect(gw, "127.0.0.3")
    closed, said = await closed_within(reader, 3)
    assert closed and said.startswith(b"HTTP/1.1 503")  # 8 open: the total cap
    lines = [r.getMessage() for r in caplog.records if r.name == "trackgate.limits"]
    assert len(lines) == 2, lines  # one for the per-address cap, one for the total, not one per connection
    for _, w in [*held, *others, (reader, writer)] + [(None, w) for _, w in refused]:
        w.close()
    # Closed connections are released: the first address gets in again.
    await asyncio.sleep(0.3)
    reader, writer = await connect(gw)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_client_that_stops_reading_is_closed(gw: Any) -> None:
    """A download nobody reads held the connection (and the core's stream) for ever."""
    reader, writer = await connect(gw)
    writer.write(b"GET /big?mib=64 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await asyncio.sleep(5)  # read nothing: the gateway's buffers fill, then it waits on us
    received = 0
    try:
        while chunk := await asyncio.wait_for(reader.read(1 << 20), 10):
            received += len(chunk)
    except ConnectionError:
        pass
    assert received < 64 << 20  # cut off, not delivered whole
    writer.close()
