"""Start the tracking-core workers, health-gate them, restart the ones that die, stop them last.

Pre-fork model: the supervisor binds ONE private Unix socket and hands the same listening fd to
every worker, so the kernel spreads connections across them and a restarted worker accepts on
the very socket the proxy already uses. Whether the core is available (live workers + the last
health check) is gateway.core_watch's business; the supervisor feeds it the live worker count.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web

from gateway import core_socket, keys, worker_process
from gateway.config import Config
from gateway.core_watch import CORE_URL, HEALTH_TIMEOUT, CoreStartupError, CoreWatch, Probe
from gateway.worker_process import MAX_BACKOFF, restart_delay
from tracking_core.contract import READY_PATH
from tracking_core.settings import mask_uri

log = logging.getLogger("trackgate.supervisor")

__all__ = ["CORE_URL", "MAX_BACKOFF", "CoreStartupError", "Probe", "Supervisor", "restart_delay"]

SCHEMA_POLL_INTERVAL = 2.0  # while a replica waits for `trackgate db upgrade`

PrepareSchema = Callable[[Config], Awaitable[None]]


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
        self.watch: CoreWatch | None = None  # set once the socket is bound
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.restarts = 0  # core workers restarted after dying (a metric)
        self._started = False
        self._stopping = False
        self._startup_failed: asyncio.Future[str] | None = None
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
        return self.watch is not None and self.watch.available and not self._stopping

    async def start(self) -> None:
        """Bind the socket, spawn the workers, bootstrap the schema once, wait until the core is ready."""
        try:
            self._socket = core_socket.bind(self.config.core_socket)
        except core_socket.CoreSocketError as exc:
            raise CoreStartupError(str(exc)) from exc
        self.socket_path = self._socket.path
        loop = asyncio.get_running_loop()
        # One deadline for the whole startup: a database that never answers fails it too.
        deadline = loop.time() + self.config.core_startup_timeout
        self.watch = CoreWatch(self.socket_path, lambda: self.live_workers)
        self._startup_failed = loop.create_future()
        # The workers spend their first half second importing; they do it while the schema is
        # checked below. A worker opens the database only for a request, and none reaches it
        # before the readiness probe, which waits for the schema step. (stop() ends them if
        # that step fails.)
        for slot in range(self.config.workers):
            self._procs[slot] = await self._spawn(slot)
            self._tasks.append(asyncio.create_task(self._keep_alive(slot)))
        # Once, here, never from the workers: several workers creating tables at once would race.
        deadline = await self._prepare(deadline)
        await self.watch.wait_ready(deadline, self.config.core_startup_timeout, self._startup_failed)
        self._started = True

    async def probe(self, path: str = READY_PATH, timeout: float = HEALTH_TIMEOUT) -> Probe:
        """Ask the core (any worker) for `path`; never raises for network trouble."""
        assert self.watch is not None
        return await self.watch.probe(path, timeout)

    async def stop(self) -> None:
        """SIGTERM every worker (they finish in-flight work), wait, then release the socket."""
        self._stopping = True
        if self.watch is not None:
            await self.watch.stop()
        for task in self._tasks:
            task.cancel()
        # Wait for the watchers first so no restart can slip in after the workers are signalled.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        await worker_process.terminate(list(self._procs.values()), self.config.drain_timeout + 5.0, "core worker")
        if self.watch is not None:
            await self.watch.close()
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

    async def _keep_alive(self, slot: int) -> None:
        """Watch one worker slot; restart its process whenever it exits, backing off if it crash-loops."""

        def exited(proc: asyncio.subprocess.Process, how: str) -> bool:
            if self._stopping:
                return False
            if not self._started:
                assert self._startup_failed is not None
                if not self._startup_failed.done():
                    why = f"core worker {slot} (pid {proc.pid}) {how} before the core was ready"
                    self._startup_failed.set_result(why)
                return False
            assert self.watch is not None
            self.watch.wake()
            return True

        async def respawn() -> None:
            self._procs[slot] = await self._spawn(slot)
            self.restarts += 1
            assert self.watch is not None
            self.watch.wake()

        await worker_process.keep_alive(f"core worker {slot}", lambda: self._procs[slot], respawn, exited)


def supervisor_context(
    command: Sequence[str] | None = None, prepare_schema: PrepareSchema | None = None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup_ctx that owns the core: up and ready on startup, drained and stopped on cleanup."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        supervisor = Supervisor(app[keys.config], command=command, prepare_schema=prepare_schema)
        app[keys.supervisor] = supervisor
        app[keys.core] = supervisor
        try:
            await supervisor.start()
            yield
        finally:
            await supervisor.stop()

    return ctx
