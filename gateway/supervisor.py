"""Start the tracking-core workers, health-gate them, restart the ones that die, stop them last.

Pre-fork model: the supervisor binds ONE private Unix socket and hands the same listening fd to
every worker, so the kernel spreads connections across them and a restarted worker accepts on
the very socket the proxy already uses. Because the supervisor keeps that socket open, a
connection made while no worker is alive waits in the backlog instead of failing; that is why
"core available" is tracked here (live workers + the last health check) and the proxy answers
503 itself rather than relying on connection errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import NamedTuple

import aiohttp
from aiohttp import web

from gateway import core_socket, keys, worker_process
from gateway.config import Config
from tracking_core.contract import ALIVE_PATH, READY_PATH
from tracking_core.settings import mask_uri

log = logging.getLogger("trackgate.supervisor")

CORE_URL = "http://trackgate-core"  # host part is ignored on a Unix socket; it only fills Host
POLL_INTERVAL = 0.05  # while waiting for the core to come (back) up
HEALTH_INTERVAL = 1.0  # while it is healthy
HEALTH_TIMEOUT = 5.0
CRASH_LOOP_WINDOW = 10.0  # a worker dying younger than this counts towards the backoff
MAX_BACKOFF = 30.0
SCHEMA_POLL_INTERVAL = 2.0  # while a replica waits for `trackgate db upgrade`

PrepareSchema = Callable[[Config], Awaitable[None]]


class CoreStartupError(Exception):
    """The tracking core could not be started; the message is meant for the operator."""


class Probe(NamedTuple):
    ok: bool
    status: int | None  # None when no HTTP answer came back
    body: str


class Supervisor:
    def __init__(
        self,
        config: Config,
        *,
        command: Sequence[str] | None = None,
        prepare_schema: PrepareSchema | None = None,
    ) -> None:
        self.config = config
        self._command = list(command or [sys.executable, "-m", "tracking_core.worker"])
        self._prepare_schema = prepare_schema
        self.socket_path = ""
        self._socket: core_socket.CoreSocket | None = None
        self._client: aiohttp.ClientSession | None = None
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._healthy = False
        self.restarts = 0  # core workers restarted after dying (a metric)
        self._started = False
        self._stopping = False
        self._wake = asyncio.Event()
        self._startup_failed = asyncio.Event()
        self._startup_failure = ""
        self._preexec = worker_process.die_with_parent()

    @property
    def live_workers(self) -> int:
        return sum(1 for p in self._procs.values() if p.returncode is None)

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self._procs.values() if p.returncode is None]

    @property
    def available(self) -> bool:
        """True while the proxy may forward: some worker is alive and the last health check passed."""
        return self._healthy and not self._stopping and self.live_workers > 0

    async def start(self) -> None:
        """Bind the socket, spawn the workers, bootstrap the schema once, wait until the core is ready."""
        try:
            self._socket = core_socket.bind(self.config.core_socket)
        except core_socket.CoreSocketError as exc:
            raise CoreStartupError(str(exc)) from exc
        self.socket_path = self._socket.path
        # One deadline for the whole startup: a database that never answers fails it too.
        deadline = asyncio.get_running_loop().time() + self.config.core_startup_timeout
        # force_close: each probe opens a fresh connection, so it reaches whichever worker accepts
        # next instead of sticking to one (possibly dead) worker through keep-alive.
        self._client = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(self.socket_path, force_close=True)
        )
        # The workers spend their first half second importing; they do it while the schema is
        # checked below. A worker opens the database only for a request, and none reaches it
        # before the readiness probe, which waits for the schema step. (stop() ends them if
        # that step fails.)
        for slot in range(self.config.workers):
            self._procs[slot] = await self._spawn(slot)
            self._tasks.append(asyncio.create_task(self._keep_alive(slot)))
        # Once, here, never from the workers: several workers creating tables at once would race.
        deadline = await self._prepare(deadline)
        await self._wait_ready(deadline)
        self._started = self._healthy = True
        self._tasks.append(asyncio.create_task(self._monitor()))

    async def probe(self, path: str = READY_PATH, timeout: float = HEALTH_TIMEOUT) -> Probe:
        """Ask the core (any worker) for `path`; never raises for network trouble."""
        assert self._client is not None
        try:
            async with self._client.get(
                CORE_URL + path, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as resp:
                return Probe(resp.status == 200, resp.status, (await resp.text())[:500])
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Probe(False, None, f"{type(exc).__name__}: {exc}".rstrip(": "))

    async def stop(self) -> None:
        """SIGTERM every worker (they finish in-flight work), wait, then release the socket."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        # Wait for the watchers first so no restart can slip in after the workers are signalled.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        running = [p for p in self._procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        if running:
            waits = [asyncio.create_task(p.wait()) for p in running]
            await asyncio.wait(waits, timeout=self.config.drain_timeout + 5.0)
            for proc in running:
                if proc.returncode is None:
                    log.warning("core worker pid %d did not stop in time; killing it", proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*waits, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._socket is not None:
            self._socket.close()

    # -- internals -------------------------------------------------------------------------------

    async def _prepare(self, deadline: float) -> float:
        """Bootstrap or check the schema by `deadline`; returns the deadline left for the core.

        A schema older than this trackgate's is not an error for a replica: it stays not ready
        (the public port closed), says so once, and re-checks until `trackgate db upgrade` has
        run, then carries on without a restart, with a fresh startup deadline."""
        if self.config.artifacts_only:
            return deadline  # no tracking store at all
        uri = mask_uri(self.config.backend_store_uri)
        log.info("checking the database schema of %s", uri)
        from tracking_core.store import schema  # lazy: SQLAlchemy stays out of the import path

        loop = asyncio.get_running_loop()
        waiting = False
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    await self._check_schema(uri)
                return deadline
            except schema.SchemaOutOfDate as exc:
                if not waiting:
                    log.warning("%s -- not ready until then; re-checking every %g s", exc, SCHEMA_POLL_INTERVAL)
                    waiting = True
            except TimeoutError:
                if not waiting:  # while waiting, a check can queue behind the upgrade's lock
                    raise CoreStartupError(
                        f"the tracking database {uri} was not ready after {self.config.core_startup_timeout:g} s"
                    ) from None
            await asyncio.sleep(SCHEMA_POLL_INTERVAL)
            deadline = loop.time() + self.config.core_startup_timeout

    async def _check_schema(self, uri: str) -> None:
        from tracking_core.store import schema

        if self._prepare_schema is not None:
            await self._prepare_schema(self.config)
            return
        try:
            await schema.prepare_all(self.config)
        except schema.SchemaOutOfDate:
            raise
        except schema.SchemaError as exc:
            raise CoreStartupError(str(exc)) from exc
        except Exception as exc:
            log.debug("schema bootstrap failed", exc_info=True)
            raise CoreStartupError(mask_uri(f"cannot prepare the database {uri}: {exc}")) from exc

    async def _spawn(self, slot: int) -> asyncio.subprocess.Process:
        assert self._socket is not None
        proc = await worker_process.spawn(
            self._command, self.config, self._socket.sock.fileno(), self._preexec
        )
        log.debug("core worker %d started, pid %d", slot, proc.pid)
        return proc

    async def _wait_ready(self, deadline: float) -> None:
        timeout = self.config.core_startup_timeout
        loop = asyncio.get_running_loop()
        failed = asyncio.create_task(self._startup_failed.wait())
        last = Probe(False, None, "no answer yet")
        try:
            while (remaining := deadline - loop.time()) > 0:
                # A probe may sit in the socket backlog until a worker accepts; race it against
                # a worker dying so a broken core fails fast instead of after the whole timeout.
                probe = asyncio.create_task(self.probe(READY_PATH, timeout=remaining))
                done, _ = await asyncio.wait({probe, failed}, return_when=asyncio.FIRST_COMPLETED)
                if failed in done:
                    probe.cancel()
                    raise CoreStartupError(self._startup_failure)
                last = probe.result()
                if last.ok:
                    return
                await asyncio.sleep(POLL_INTERVAL)
        finally:
            failed.cancel()
        answer = f"HTTP {last.status}: {last.body}" if last.status else last.body
        raise CoreStartupError(f"the tracking core was not ready after {timeout:g} s (last answer: {answer})")

    async def _keep_alive(self, slot: int) -> None:
        """Watch one worker slot; restart its process whenever it exits, backing off if it crash-loops."""
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            proc = self._procs[slot]
            started = loop.time()
            code = await proc.wait()
            if self._stopping:
                return
            how = worker_process.describe_exit(code)
            if not self._started:
                self._startup_failure = f"core worker {slot} (pid {proc.pid}) {how} before the core was ready"
                self._startup_failed.set()
                return
            if self.live_workers == 0:
                self._healthy = False
            self._wake.set()
            failures = failures + 1 if loop.time() - started < CRASH_LOOP_WINDOW else 0
            delay = restart_delay(failures)
            log.warning("core worker %d (pid %d) %s; restarting it in %.2g s", slot, proc.pid, how, delay)
            while True:
                await asyncio.sleep(delay)
                try:
                    self._procs[slot] = await self._spawn(slot)
                    self.restarts += 1
                    break
                except OSError as exc:
                    delay = min(max(delay * 2, 0.25), MAX_BACKOFF)
                    log.error("cannot start core worker %d: %s; retrying in %.2g s", slot, exc, delay)
            self._wake.set()

    async def _monitor(self) -> None:
        """Keep `available` current: poll liveness, fast while the core is down, slowly while up."""
        while True:
            self._wake.clear()
            ok = False
            if self.live_workers:
                result = await self.probe(ALIVE_PATH, HEALTH_TIMEOUT)
                ok = result.ok and self.live_workers > 0
                if not ok and self._healthy:
                    log.warning("core health check failed: %s", result.body or result.status)
            if ok and not self._healthy:
                log.info("core is available again")
            self._healthy = ok
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that arrives
            # as the event is set, and this loop would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HEALTH_INTERVAL if ok else POLL_INTERVAL):
                    await self._wake.wait()


def restart_delay(quick_failures: int) -> float:
    """Restart at once after a single crash; while a worker keeps dying young, wait 0.5 s, 1 s, 2 s...

    so a core that cannot run (bad config, full disk) does not burn a CPU respawning."""
    return 0.0 if quick_failures <= 1 else min(0.25 * 2 ** (quick_failures - 1), MAX_BACKOFF)


def supervisor_context(
    command: Sequence[str] | None = None, prepare_schema: PrepareSchema | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup_ctx that owns the core: up and ready on startup, drained and stopped on cleanup."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        supervisor = Supervisor(app[keys.config], command=command, prepare_schema=prepare_schema)
        app[keys.supervisor] = supervisor
        try:
            await supervisor.start()
            yield
        finally:
            await supervisor.stop()

    return ctx
