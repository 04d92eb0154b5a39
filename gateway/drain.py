"""Graceful drain: stop accepting, let every in-flight request finish, then shut down.

aiohttp's own graceful shutdown (`AppRunner.cleanup`) marks every connection closing first, and
a closing connection stops reading: a request whose body is still arriving (an artifact upload,
a slow client) could never finish and would be cut off when the shutdown timeout ends. So the
gateway drains itself before calling cleanup: it stops the listening sockets, closes only idle
keep-alive connections, answers in-flight requests with `Connection: close`, and waits (bounded)
until no handler runs. Cleanup then finds nothing left to cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("trackgate.drain")


class Drain:
    def __init__(self) -> None:
        self.draining = False
        self._busy: dict[RequestHandler, int] = {}  # connection -> requests it is handling now
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return sum(self._busy.values())

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count the request as in flight for as long as its handler runs (streaming included)."""
        connection = request.protocol
        self._busy[connection] = self._busy.get(connection, 0) + 1
        self._idle.clear()
        try:
            return await handler(request)
        finally:
            self._busy[connection] -= 1
            if not self._busy[connection]:
                del self._busy[connection]
            if not self._busy:
                self._idle.set()

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        if self.draining:
            response.force_close()  # the client must not send another request on this connection

    async def drain(self, runner: web.BaseRunner, timeout: float) -> bool:
        """Stop accepting and wait up to `timeout` s for in-flight requests; True if all finished."""
        self.draining = True
        for site in list(runner.sites):
            await site.stop()
        if runner.server is not None:
            for connection in runner.server.connections:
                if connection not in self._busy:
                    connection.close()  # idle keep-alive: nothing to wait for
        if self.in_flight:
            log.info("waiting for %d in-flight request(s)", self.in_flight)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        if self.in_flight:
            log.warning("%d request(s) still running after %g s; cutting them off", self.in_flight, timeout)
            return False
        return True
