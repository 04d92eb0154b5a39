"""One gateway process's view of the core: may it forward right now?

Every gateway process keeps its own: the primary (whose supervisor owns the core workers and
counts them) and each extra gateway process (which is told the count by the primary, see
gateway.gateway_pool). Because the supervisor keeps the core socket open, a connection made
while no worker is alive waits in the backlog instead of failing; so "available" is the live
worker count plus the last health probe, and the proxy answers 503 itself rather than relying
on connection errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import NamedTuple, Protocol

import aiohttp

from tracking_core.contract import ALIVE_PATH, READY_PATH

log = logging.getLogger("trackgate.supervisor")

CORE_URL = "http://trackgate-core"  # host part is ignored on a Unix socket; it only fills Host
POLL_INTERVAL = 0.05  # while waiting for the core to come (back) up
HEALTH_INTERVAL = 1.0  # while it is healthy
HEALTH_TIMEOUT = 5.0


class CoreStartupError(Exception):
    """The tracking core could not be started; the message is meant for the operator."""


class Probe(NamedTuple):
    ok: bool
    status: int | None  # None when no HTTP answer came back
    body: str


class CoreView(Protocol):
    """What the proxy and /readyz need to know of the core: the Supervisor in the primary gateway
    process, a CoreWatch in each extra one."""

    socket_path: str

    @property
    def available(self) -> bool: ...

    @property
    def live_workers(self) -> int: ...

    async def probe(self, path: str = READY_PATH, timeout: float = HEALTH_TIMEOUT) -> Probe: ...


class CoreWatch:
    """Probes the core over its socket: fast while it is down, slowly while it is up.

    `live_workers` counts the core worker processes alive now; `wake()` after it changes, so a
    dead core is noticed at once and a restarted one is probed without waiting for the interval.
    """

    def __init__(self, socket_path: str, live_workers: Callable[[], int]) -> None:
        self.socket_path = socket_path
        self._live_workers = live_workers
        self.healthy = False
        self.stopping = False
        self.on_wake: list[Callable[[], None]] = []  # told of every change (the primary relays it)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # force_close: each probe opens a fresh connection, so it reaches whichever worker accepts
        # next instead of sticking to one (possibly dead) worker through keep-alive.
        self._client = aiohttp.ClientSession(connector=aiohttp.UnixConnector(socket_path, force_close=True))

    @property
    def live_workers(self) -> int:
        return self._live_workers()

    @property
    def available(self) -> bool:
        """True while the proxy may forward: some worker is alive and the last health check passed."""
        return self.healthy and not self.stopping and self.live_workers > 0

    def wake(self) -> None:
        """The live worker count changed: re-probe now."""
        if self.live_workers == 0:
            self.healthy = False
        self._wake.set()
        for listener in self.on_wake:
            listener()

    async def probe(self, path: str = READY_PATH, timeout: float = HEALTH_TIMEOUT) -> Probe:
        """Ask the core (any worker) for `path`; never raises for network trouble."""
        try:
            async with self._client.get(CORE_URL + path, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                return Probe(resp.status == 200, resp.status, (await resp.text())[:500])
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Probe(False, None, f"{type(exc).__name__}: {exc}".rstrip(": "))

    async def wait_ready(self, deadline: float, timeout: float, failed: asyncio.Future[str] | None = None) -> None:
        """Probe READY_PATH until it passes, then keep watching; raise CoreStartupError at `deadline`
        (`timeout` s after the start, for the message) or as soon as `failed` gets a reason."""
        loop = asyncio.get_running_loop()
        failed = failed if failed is not None else loop.create_future()
        last = Probe(False, None, "no answer yet")
        while (remaining := deadline - loop.time()) > 0:
            # A probe may sit in the socket backlog until a worker accepts; race it against
            # a worker dying so a broken core fails fast instead of after the whole timeout.
            probe = asyncio.ensure_future(self.probe(READY_PATH, timeout=remaining))
            done, _ = await asyncio.wait({probe, failed}, return_when=asyncio.FIRST_COMPLETED)
            if failed in done:
                probe.cancel()
                raise CoreStartupError(failed.result())
            last = probe.result()
            if last.ok:
                self.healthy = True
                self._task = asyncio.create_task(self._monitor())
                return
            await asyncio.sleep(POLL_INTERVAL)
        answer = f"HTTP {last.status}: {last.body}" if last.status else last.body
        raise CoreStartupError(f"the tracking core was not ready after {timeout:g} s (last answer: {answer})")

    async def stop(self) -> None:
        """Unavailable from now on (the server is stopping); no more probes of the core's health."""
        self.stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def close(self) -> None:
        await self.stop()
        await self._client.close()

    async def _monitor(self) -> None:
        """Keep `available` current: poll liveness, fast while the core is down, slowly while up."""
        while True:
            self._wake.clear()
            ok = False
            if self.live_workers:
                result = await self.probe(ALIVE_PATH, HEALTH_TIMEOUT)
                ok = result.ok and self.live_workers > 0
                if not ok and self.healthy:
                    log.warning("core health check failed: %s", result.body or result.status)
            if ok and not self.healthy:
                log.info("core is available again")
            self.healthy = ok
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that arrives
            # as the event is set, and this loop would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEALTH_INTERVAL if ok else POLL_INTERVAL):
                    await self._wake.wait()
