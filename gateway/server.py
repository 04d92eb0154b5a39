"""Run the gateway: core first, public port last; drain and exit 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time

from aiohttp import web

from gateway import keys
from gateway.app import build_gateway_app
from gateway.config import Config
from gateway.limits import ConnectionGuard, GuardedSite
from gateway.supervisor import CoreStartupError
from tracking_core import log_format
from tracking_core.settings import mask_uri

log = logging.getLogger("trackgate.server")

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
    until the core can answer: the lesson of proxies that came up before their server.
    """
    app = app or build_gateway_app(config)
    runner = make_runner(config, app)
    tls = app.get(keys.tls)
    started = time.monotonic()
    try:
        await runner.setup()  # runs the supervisor's cleanup_ctx: workers up, core ready
        log.info("core ready in %.2f s", time.monotonic() - started)
        ssl_context = tls.listening if tls is not None else None
        site = GuardedSite(runner, ConnectionGuard(config), config.host, config.port, reuse_address=True,
                           ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:  # in use, not ours to bind, no such address: one line, no traceback
            cause = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's text repeats the address
            raise CoreStartupError(f"cannot listen on {config.host}:{config.port}: {cause}") from None
    except BaseException:
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
        "starting trackgate: %d core worker(s), tracking database %s",
        config.workers,
        mask_uri(config.backend_store_uri),
    )
    # A signal during startup must abort the wait for the core, not be queued behind it.
    starting = asyncio.create_task(start(config))
    stopping = asyncio.create_task(stop_requested.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        log.info("stopped before the core was ready")
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, CoreStartupError):
            await starting
        return 0
    try:
        runner = starting.result()
        serving.append(runner)
    except CoreStartupError as exc:
        stopping.cancel()
        log.error("cannot start: %s", exc)
        return 1
    await stopping
    log.info("draining in-flight requests (up to %g s), then stopping the core", config.drain_timeout)
    await stop(runner)
    log.info("stopped")
    return 0


def reload_tls(serving: list[web.AppRunner]) -> None:
    tls = serving[0].app.get(keys.tls) if serving else None
    if tls is None:
        log.info("SIGHUP: no TLS certificate to reload")
        return
    tls.reload()


async def stop(runner: web.AppRunner) -> None:
    """Drain (no new connections, in-flight requests finish), then stop the core and clean up."""
    await runner.app[keys.drain].drain(runner, runner.app[keys.config].drain_timeout)
    await runner.cleanup()


def run(config: Config) -> int:
    log_format.configure(config.log_level, config.log_format, "gateway")
    # aiohttp's access log and alembic's migration chatter are noise at the default level;
    # --log-level debug shows them. The request log (gateway.access_log) is what log collectors
    # want: on with --log-format json, a readable line per request with debug otherwise.
    quiet = logging.DEBUG if config.log_level.lower() == "debug" else logging.WARNING
    for name in ("aiohttp.access", "alembic"):
        logging.getLogger(name).setLevel(quiet)
    if config.log_format != "json":
        logging.getLogger("trackgate.access").setLevel(quiet)
    return asyncio.run(serve(config))
