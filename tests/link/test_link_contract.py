"""The framed link's contract, both real ends in one process (tests/link/conftest.py): many
requests interleaved on one connection, bodies streamed both ways under per-stream
back-pressure, malformed frames, and a peer that goes away mid-request."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import Callable

import pytest

from gateway.core_link import CoreLink, LinkError
from tests.link.conftest import MIB, Link, read_all
from tracking_core.link import frames

# How far one side may run ahead of a stalled reader: the stream's window, a chunk in hand, and the
# socket's kernel buffers at both ends (Linux doubles the SO_SNDBUF/SO_RCVBUF asked for). Bounded,
# and far below the 48-256 MiB bodies the tests send.
AHEAD_LIMIT = frames.WINDOW + frames.CHUNK + 2 * 2 * frames.SOCKET_BUFFER


class Source:
    """A request body of `size` bytes, produced `block` by block as the link reads it (as the
    gateway reads a client's upload); `on_read(bytes sent so far)` before each block."""

    def __init__(self, size: int, block: bytes, on_read: Callable[[int], None] | None = None) -> None:
        self.size, self.block, self.on_read, self.sent = size, block, on_read, 0

    async def read(self, n: int) -> bytes:
        if self.sent >= self.size:
            return b""
        if self.on_read is not None:
            self.on_read(self.sent)
        self.sent += len(self.block)
        return self.block


async def test_interleaved_requests_share_one_connection(core: Link) -> None:
    # Sent longest first: on one connection, the short ones must come back before the long ones.
    delays = [0.4, 0.3, 0.2, 0.1, 0.0] * 4
    streams = [
        await core.link.open("GET", f"/sleep?tag={i}&s={d}", ["X-Request-Id", f"rid-{i}"], b"", True)
        for i, d in enumerate(delays)
    ]
    assert len(core.link.connections) == 1
    assert len(core.link.connections[0].streams) == len(delays)
    order: list[int] = []

    async def answer(i: int) -> None:
        await streams[i].head
        order.append(i)
        assert streams[i].status == 200
        assert json.loads(await read_all(streams[i])) == {"tag": str(i), "request_id": f"rid-{i}"}

    await asyncio.gather(*(answer(i) for i in range(len(delays))))
    assert core.counters.started[:5] == ["0", "1", "2", "3", "4"]  # all began at once
    assert order.index(4) < order.index(0)  # 0.0 s answered before 0.4 s sent earlier
    assert len(core.link.connections) == 1
    assert not core.link.connections[0].streams  # every stream finished and was released


async def test_request_head_and_body_reach_the_handler_as_http_would(core: Link) -> None:
    headers = ["Content-Type", "application/json", "X-Trackgate-Subject", "al%C3%AFce", "Accept", "a", "Accept", "b"]
    stream = await core.link.open("POST", "/echo/a%2Fb?x=1&y=%20", headers, b'{"k": 1}', True)
    await stream.head
    seen = json.loads(await read_all(stream))
    assert seen["method"] == "POST"
    assert seen["path"] == "/echo/a/b"  # aiohttp decodes the path as it does for HTTP
    assert seen["raw_path"] == "/echo/a%2Fb?x=1&y=%20"  # exactly as the client sent it
    assert seen["query"] == {"x": "1", "y": " "}
    assert seen["body"] == '{"k": 1}'
    assert ["Accept", "a"] in seen["headers"] and ["Accept", "b"] in seen["headers"]  # duplicates kept
    assert ["X-Trackgate-Subject", "al%C3%AFce"] in seen["headers"]
    names = {name.lower() for name, _ in stream.headers}
    assert "x-extra" in names and "content-length" in names
    assert "transfer-encoding" not in names and "connection" not in names  # the link frames bodies


async def test_large_bodies_stream_both_ways(core: Link) -> None:
    size = 64 * MIB
    block = bytes(range(256)) * 1024
    stream = await core.link.open("PUT", "/sink", [], b"", False)
    sender = asyncio.create_task(stream.send_body(Source(size, block)))  # type: ignore[arg-type]
    await stream.head
    await sender
    expected = hashlib.sha256(block * (size // len(block))).hexdigest()
    assert json.loads(await read_all(stream)) == {"size": size, "sha256": expected}

    stream = await core.get("/source?mib=64")
    digest = hashlib.sha256()
    total = 0
    assert stream.content is not None
    while chunk := await stream.content.readany():
        digest.update(chunk)
        total += len(chunk)
    assert total == 64 * MIB
    assert digest.hexdigest() == hashlib.sha256((bytes(range(256)) * 4096) * 64).hexdigest()


async def test_a_slow_core_holds_back_the_gateways_upload(core: Link) -> None:
    """The core reads 256 KiB every 5 ms: the gateway must stop sending long before the whole
    body is buffered anywhere (PAUSE on the stream), and never run more than AHEAD_LIMIT ahead."""
    size = 48 * MIB
    block = b"u" * (256 * 1024)
    ahead: list[int] = []
    source = Source(size, block, lambda sent: ahead.append(sent - core.counters.received))
    stream = await core.link.open("PUT", "/sink?delay=0.005", [], b"", False)
    sender = asyncio.create_task(stream.send_body(source))  # type: ignore[arg-type]
    await stream.head
    await sender
    assert json.loads(await read_all(stream))["size"] == size
    assert max(ahead) < AHEAD_LIMIT, f"the gateway ran {max(ahead) / MIB:.1f} MiB ahead of the core"


async def test_a_slow_client_holds_back_the_core_and_not_the_other_streams(core: Link) -> None:
    """The gateway's client reads nothing for a while: the core's handler must be paused a few
    MiB in (not produce 256 MiB into memory), and other requests on the same connection must
    still be answered meanwhile (no head-of-line blocking)."""
    stream = await core.get("/source?mib=256")
    await asyncio.sleep(0.5)
    assert core.counters.produced < AHEAD_LIMIT, f"the core produced {core.counters.produced / MIB:.1f} MiB unread"
    other = await asyncio.wait_for(core.get("/sleep?tag=other"), timeout=2)
    assert other.status == 200
    assert len(core.link.connections) == 1 and stream.connection is other.connection
    consumed = 0
    assert stream.content is not None
    while chunk := await stream.content.readany():
        consumed += len(chunk)
        assert core.counters.produced - consumed < AHEAD_LIMIT
    assert consumed == 256 * MIB


async def test_a_handler_that_closes_its_transport_cuts_only_its_own_stream(core: Link) -> None:
    stream = await core.get("/abort")
    assert stream.status == 200
    assert stream.content is not None
    with pytest.raises(LinkError):
        await asyncio.wait_for(stream.content.read(), timeout=5)
    other = await core.get("/sleep?tag=after")
    assert other.status == 200 and stream.connection is other.connection


async def test_a_reset_from_the_gateway_releases_the_stream(core: Link) -> None:
    stream = await core.get("/source?mib=256")
    stream.reset()
    await asyncio.sleep(0.2)
    assert core.server.streams == 0  # the handler's next write failed and it finished
    assert (await core.get("/sleep?tag=after")).status == 200


@pytest.mark.parametrize(
    "garbage",
    [
        frames.HEADER.pack(0x3F, 1, 0),  # an unknown frame type
        frames.HEADER.pack(frames.REQUEST, 1, frames.MAX_FRAME + 1),  # longer than any frame may be
        frames.frame(frames.REQUEST | frames.END, 1, frames.HEAD_LENGTH.pack(3) + b"{x}"),  # head not JSON
        frames.head_frame(frames.REQUEST, 1, ["GET", "http://elsewhere/", []], b"", True),  # not origin-form
        frames.head_frame(frames.REQUEST, 1, ["GET", "/sleep?tag=x", ["odd"]], b"", True),  # half a header
        frames.head_frame(frames.REQUEST, 1, ["GET", "/sleep?tag=x", ["Host", 1]], b"", True),  # not a str
        frames.frame(frames.RESPONSE, 1, b""),  # a frame only a core sends
    ],
    ids=[
        "unknown-type",
        "oversized",
        "head-not-json",
        "absolute-target",
        "odd-headers",
        "int-header",
        "wrong-direction",
    ],
)
async def test_a_malformed_frame_closes_that_connection_only(core: Link, garbage: bytes) -> None:
    loop = asyncio.get_running_loop()
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.setblocking(False)
    await loop.sock_connect(raw, core.path)
    await loop.sock_sendall(raw, frames.PREFACE + garbage)
    received = b""
    async with asyncio.timeout(5):
        while chunk := await loop.sock_recv(raw, 65536):
            received += chunk
    raw.close()
    assert received[:1] == bytes([frames.HELLO])  # it answered the preface, then hung up
    assert not core.server.streams
    assert (await core.get("/sleep?tag=still-serving")).status == 200


async def test_plain_http_on_the_same_socket_is_still_served(core: Link) -> None:
    """The supervisor's health probes and an operator's curl speak HTTP to the same socket."""
    reader, writer = await asyncio.open_unix_connection(core.path)
    writer.write(b"GET /sleep?tag=http HTTP/1.1\r\nHost: core\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b'"tag": "http"' in answer


async def _fake_core(path: str, reply: bytes) -> asyncio.Server:
    """A peer that says HELLO and answers the first request frame with `reply`."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(frames.PREFACE))
        writer.write(frames.frame(frames.HELLO, 0, b'{"pid": 4242}'))
        await reader.readexactly(frames.HEADER_SIZE)
        writer.write(reply)
        await writer.drain()
        await reader.read()  # until the gateway hangs up

    return await asyncio.start_unix_server(serve, path)


@pytest.mark.parametrize(
    "reply",
    [frames.HEADER.pack(0x3F, 1, 0), frames.frame(frames.DATA, 1, b"body before any head")],
    ids=["unknown-type", "data-before-head"],
)
async def test_a_core_sending_garbage_fails_the_request_not_hangs_it(tmp_path, reply: bytes) -> None:
    path = str(tmp_path / "fake.sock")
    server = await _fake_core(path, reply)
    pool = CoreLink(path, lambda: 1)
    try:
        stream = await pool.open("GET", "/x", [], b"", True)
        with pytest.raises(LinkError):
            await asyncio.wait_for(stream.head, timeout=5)
        assert not pool.connections  # the broken connection is out of the pool
    finally:
        await pool.close()
        server.close()


async def test_a_core_that_vanishes_fails_every_stream_in_flight(tmp_path) -> None:
    path = str(tmp_path / "fake.sock")
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(frames.PREFACE))
        writer.write(frames.frame(frames.HELLO, 0, b'{"pid": 4243}'))
        writers.append(writer)
        await reader.read()

    server = await asyncio.start_unix_server(serve, path)
    pool = CoreLink(path, lambda: 1)
    try:
        streams = [await pool.open("GET", f"/x{i}", [], b"", True) for i in range(5)]
        await asyncio.sleep(0.1)
        writers[0].transport.abort()  # as a SIGKILLed worker's socket closes
        for stream in streams:
            with pytest.raises(LinkError):
                await asyncio.wait_for(stream.head, timeout=5)
    finally:
        await pool.close()
        server.close()


async def test_goaway_sends_new_requests_elsewhere_and_lets_old_ones_finish(core: Link) -> None:
    slow = await core.link.open("GET", "/sleep?tag=slow&s=0.5", [], b"", True)
    await asyncio.sleep(0.1)
    first = core.link.connections[0]
    drained = asyncio.create_task(core.server.drain(timeout=5))
    await asyncio.sleep(0.1)
    assert first.going_away and first not in core.link.connections
    await slow.head  # the request in flight still gets its answer
    assert slow.status == 200
    assert await drained is True


async def test_a_core_that_sends_nothing_is_cut_off_after_the_idle_timeout(core: Link) -> None:
    pool = CoreLink(core.path, lambda: 1, idle_timeout=0.5)
    try:
        started = asyncio.get_running_loop().time()
        stream = await pool.open("GET", "/sleep?tag=stuck&s=30", [], b"", True)
        with pytest.raises(LinkError):
            await asyncio.wait_for(stream.head, timeout=5)
        assert asyncio.get_running_loop().time() - started < 2
        # A long upload is not idleness: the core answers only once the body is in.
        source = Source(16 * MIB, b"s" * (256 * 1024))
        stream = await pool.open("PUT", "/sink?delay=0.02", [], b"", False)
        sender = asyncio.create_task(stream.send_body(source))  # type: ignore[arg-type]
        await asyncio.wait_for(stream.head, timeout=30)  # 64 reads x 20 ms: longer than 0.5 s
        await sender
        assert json.loads(await read_all(stream))["size"] == 16 * MIB
    finally:
        await pool.close()
