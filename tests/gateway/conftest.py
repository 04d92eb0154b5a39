"""Fixtures for the gateway tests: an in-process gateway over the stand-in core, and
`trackgate server` subprocesses over the real core. Everything listens on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from gateway.app import build_gateway_app
from gateway.config import load
from gateway.server import start, stop
from tests.gateway.support import FAKE_CORE, ServerProcess, no_schema
from tests.services import free_port


@dataclass
class Gateway:
    runner: web.AppRunner
    app: web.Application
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def gateways(core_command: list[str]) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """Start in-process gateways over `core_command` (settings as config values); stop them on exit."""
    runners: list[web.AppRunner] = []

    async def make(port: int | None = None, **settings: Any) -> Gateway:
        port = port or free_port()
        config = load({"port": port, **settings}, env={})
        app = build_gateway_app(config, core_command=core_command, prepare_schema=no_schema)
        runner = await start(config, app)
        runners.append(runner)
        return Gateway(runner, app, port)

    try:
        yield make
    finally:
        for runner in runners:
            await stop(runner)


@pytest.fixture
async def gateway_factory() -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """Start the gateway in this process with the stand-in core."""
    async with gateways(FAKE_CORE) as make:
        yield make


@pytest.fixture
async def gw(gateway_factory: Callable[..., Awaitable[Gateway]]) -> Gateway:
    return await gateway_factory()


@pytest.fixture
def server_process() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def make(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess(*args, env=env)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
