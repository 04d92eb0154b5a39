"""Run the gateway: core first, public port last, then the extra gateway processes (gateway_workers);
drain and exit 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

from gateway import keys
from gateway.app import build_gateway_app
from gateway.config import Config
from gateway.gateway_pool import GatewayPool
from gateway.limits import ConnectionGuard, GuardedSite
from gateway.supervisor import CoreStartupError
from tracking_core import log_format
from tracking_core.settings import mask_uri

log = logging.getLogger("trackgate.server")
T = TypeVar("T")

CLEANUP_GRACE = 2.0


def make_runner(config: Config, app: web.Application) -> web.AppRunner:
    return web.AppRunner(
        app,
        # The drain proper happens before cleanup (see gateway.drain); this only bounds how long
        # cleanup waits for the last response bytes of handlers that had just returned.
        shutdown_timeout=CLEANUP_GRACE,
        # Request bodies go to the core byte for byte, still compressed if the client compressed them.
        auto_decompress=False,
        handle_signals=False,
        # aiohttp's default is an hour; the header and body timeouts are gateway.limits' sweeper.
        keepalive_timeout=config.keepalive_timeout,
    )


async def start(config: Config, app: web.Application | None = None) -> web.AppRunner:
    """Bring the core up and healthy, then (and only then) bind the public port.

    Binding last means a platform's TCP startup probe, and every client, sees a closed port
    until the core can answer: the lesson of proxies that came up before their server. With
    gateway_workers > 1 the extra gateway processes (spawned first, importing meanwhile) get the
    listening socket then; each accepts once the core answers it too (gateway.gateway_pool).
    """
    app = app or build_gateway_app(config)
    runner = make_runner(config, app)
    tls = app.get(keys.tls)
    started = time.monotonic()
    pool = None
    try:
        if config.gateway_processes > 1:
            # Spawned now, so that their imports overlap the core's start-up; they wait for `listen`.
            pool = app[keys.gateway_pool] = GatewayPool(config)
            await pool.spawn()
        await runner.setup()  # runs the supervisor's cleanup_ctx: workers up, core ready
        log.info("core ready in %.2f s", time.monotonic() - started)
        ssl_context = tls.listening if tls is not None else None
        site = GuardedSite(runner, ConnectionGuard(config), config.host, config.port, reuse_address=True,
                           reuse_port=pool is not None, ssl_context=ssl_context, accept=pool is None)
        try:
            await site.start()
        except OSError as exc:  # in use, not ours to bind, no such address: one line, no traceback
            cause = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's text repeats the address
            raise CoreStartupError(f"cannot listen on {config.host}:{config.port}: {cause}") from None
        if pool is not None:
            # Listening already (a TCP probe connects; clients wait in the backlog); the primary
            # accepts once the extra processes do, on their own sockets of the port.
            await pool.listen(app[keys.supervisor], site.bind_siblings)
            await site.accept()
    except BaseException:
        if pool is not None:
            await pool.stop()
        await runner.cleanup()
        raise
    for host, port in (a[:2] for a in runner.addresses):
        shown = f"[{host}]" if ":" in host else host
        scheme = "https" if tls is not None else "http"
        log.info("listening on %s://%s:%d%s", scheme, shown, port, config.static_prefix)
    return runner


async def serve(config: Config) -> int:
    """Serve until SIGTERM/SIGINT; return the process exit code."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    # SIGHUP reloads the TLS certificate (new connections get it; none is dropped). Handled from
    # the start, so an early SIGHUP is logged instead of killing the process.
    serving: list[web.AppRunner] = []
    loop.add_signal_handler(signal.SIGHUP, lambda: reload_tls(serving))
    log.info(
        "starting trackgate: %d gateway process(es), %d core worker(s), tracking database %s",
        config.gateway_processes,
        config.workers,
        mask_uri(config.backend_store_uri),
    )
    try:
        runner = await unless_stopped(start(config), stop_requested)
    except CoreStartupError as exc:
        log.error("cannot start: %s", exc)
        return 1
    if runner is None:
        log.info("stopped before the core was ready")
        return 0
    serving.append(runner)
    await stop_requested.wait()
    log.info("draining in-flight requests (up to %g s), then stopping the core", config.drain_timeout)
    await stop(runner)
    log.info("stopped")
    return 0


async def unless_stopped(starting: Coroutine[Any, Any, T], stop_requested: asyncio.Event) -> T | None:
    """Await `starting`, unless a stop is requested first: a signal during startup must abort the
    wait for the core, not be queued behind it. None when stopped; startup errors propagate."""
    task = asyncio.create_task(starting)
    stopping = asyncio.create_task(stop_requested.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, CoreStartupError):
        await task
    return None


def reload_tls(serving: list[web.AppRunner]) -> None:
    if serving and (pool := serving[0].app.get(keys.gateway_pool)) is not None:
        pool.signal(signal.SIGHUP)  # each extra gateway process reloads its own copy
    tls = serving[0].app.get(keys.tls) if serving else None
    if tls is None:
        log.info("SIGHUP: no TLS certificate to reload")
        return
    tls.reload()


async def stop(runner: web.AppRunner) -> None:
    """Drain (no new connections, in-flight requests finish; the extra gateway processes drain
    alongside), then stop the core and clean up."""
    pool = runner.app.get(keys.gateway_pool)
    if pool is not None:
        pool.terminate()
    await runner.app[keys.drain].drain(runner, runner.app[keys.config].drain_timeout)
    if pool is not None:
        await pool.stop()  # before the core stops: their in-flight requests need it
    await runner.cleanup()


def configure_logging(config: Config) -> None:
    """This gateway process's log lines (with its pid when several gateway processes serve)."""
    several = config.gateway_processes > 1
    text_format = log_format.TEXT_FORMAT.format(process=f"gateway[{os.getpid()}]") if several else None
    log_format.configure(config.log_level, config.log_format, "gateway", text_format)
    # aiohttp's access log and alembic's migration chatter are noise at the default level;
    # --log-level debug shows them. The request log (gateway.access_log) is what log collectors
    # want: on with --log-format json, a readable line per request with debug otherwise.
    quiet = logging.DEBUG if config.log_level.lower() == "debug" else logging.WARNING
    for name in ("aiohttp.access", "alembic"):
        logging.getLogger(name).setLevel(quiet)
    if config.log_format != "json":
        logging.getLogger("trackgate.access").setLevel(quiet)


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run a gateway process's main coroutine. On asyncio's loop, not uvloop: uvloop took 1.5-14 %
    less gateway CPU per request here, but TLS handshakes hung under it (TlsAcceptor's start_tls
    and the SIGHUP certificate swap); see README, Speed."""
    return asyncio.run(main)


def run(config: Config) -> int:
    configure_logging(config)
    return run_loop(serve(config))
