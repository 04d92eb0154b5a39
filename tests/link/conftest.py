"""The framed link in one process: a real aiohttp app served by the core's LinkServer on a Unix
socket, and the gateway's CoreLink pool connected to it. No HTTP anywhere between the two."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from gateway.core_link import CoreLink, GatewayStream
from tracking_core.link.server import LinkServer

MIB = 1024 * 1024


@dataclass
class Counters:
    """What the test core's handlers saw, for the back-pressure assertions."""

    received: int = 0  # request-body bytes a handler has read so far
    produced: int = 0  # response-body bytes a handler has handed to aiohttp so far
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)


def build_test_app(counters: Counters) -> web.Application:
    async def sleep(request: web.Request) -> web.Response:
        tag = request.query["tag"]
        counters.started.append(tag)
        await asyncio.sleep(float(request.query.get("s", "0")))
        counters.finished.append(tag)
        return web.json_response({"tag": tag, "request_id": request.headers.get("X-Request-Id")})

    async def sink(request: web.Request) -> web.Response:
        """Reads the body, optionally slowly; answers its size and sha256."""
        delay = float(request.query.get("delay", "0"))
        digest = hashlib.sha256()
        size = 0
        while chunk := await request.content.read(256 * 1024):
            digest.update(chunk)
            size += len(chunk)
            counters.received = size
            if delay:
                await asyncio.sleep(delay)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    async def source(request: web.Request) -> web.StreamResponse:
        """Streams `mib` MiB of a fixed pattern, unknown length."""
        response = web.StreamResponse()
        await response.prepare(request)
        block = bytes(range(256)) * 4096
        for _ in range(int(request.query["mib"])):
            await response.write(block)
            counters.produced += len(block)
        await response.write_eof()
        return response

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "raw_path": request.raw_path,
                "query": dict(request.query),
                "headers": list(request.headers.items()),
                "body": body.decode(),
            },
            headers={"X-Extra": "1"},
        )

    async def abort(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 10 * MIB
        await response.prepare(request)
        await response.write(b"x" * 1000)
        assert request.transport is not None
        request.transport.close()  # as the artifact download does when its store fails mid-body
        return response

    app = web.Application()
    app.router.add_get("/sleep", sleep)
    app.router.add_route("*", "/sink", sink)
    app.router.add_get("/source", source)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_get("/abort", abort)
    return app


@dataclass
class Link:
    link: CoreLink
    server: LinkServer
    counters: Counters
    path: str

    async def get(self, target: str, headers: list[str] | None = None) -> GatewayStream:
        stream = await self.link.open("GET", target, headers or [], b"", True)
        await stream.head
        return stream


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Link]:
    counters = Counters()
    runner = web.AppRunner(build_test_app(counters), handle_signals=False, access_log=None)
    await runner.setup()
    assert runner.server is not None
    link_server = LinkServer(runner.server, asyncio.get_running_loop())
    path = str(tmp_path / "core.sock")
    listener = await asyncio.get_running_loop().create_unix_server(link_server.protocol_factory, path)
    pool = CoreLink(path, lambda: 1)
    yield Link(pool, link_server, counters, path)
    await pool.close()
    listener.close()
    for connection in list(link_server.connections):
        connection.close()
    await runner.cleanup()


async def read_all(stream: GatewayStream) -> bytes:
    if stream.body is not None:
        return stream.body
    assert stream.content is not None
    return await stream.content.read()
