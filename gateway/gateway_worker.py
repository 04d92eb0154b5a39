"""An extra gateway process: serves the gateway app on the public socket the primary hands over.

Started by the primary (gateway.gateway_pool) as `python -m gateway.gateway_worker --control-fd N`:
the config and then the live core worker count arrive on stdin; the core's socket path and the
listening socket(s) arrive on the control socket once the primary listens. No supervisor here:
the core is the primary's. This process is health-gated on its own (it accepts only once the
core answers it and its link is open, then says "ready"), answers 503 while the core is
unavailable as the primary does, reloads its TLS certificate on SIGHUP, and drains on SIGTERM,
on SIGINT, or when its stdin closes (the primary is gone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway import keys, server
from gateway.app import build_gateway_app
from gateway.config import Config
from gateway.core_watch import CoreStartupError, CoreWatch
from gateway.gateway_pool import READY, read_config
from gateway.limits import ConnectionGuard, GuardedSite

log = logging.getLogger("trackgate.gateway")


class CoreStatus(asyncio.Protocol):
    """The primary's lines on our stdin: the live core worker count, each time it changes."""

    def __init__(self, on_change: Callable[[], None], on_eof: Callable[[], None]) -> None:
        self.live_workers = 0
        self.on_change = on_change
        self._on_eof = on_eof
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        if lines and lines[-1].strip().isdigit():
            self.live_workers = int(lines[-1])
            self.on_change()

    def eof_received(self) -> bool:
        self._on_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_eof()


def core_watch_context(socket_path: str, status: CoreStatus) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup_ctx standing in for the supervisor: watch the primary's core, ready before serving."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config: Config = app[keys.config]
        watch = CoreWatch(socket_path, lambda: status.live_workers)
        app[keys.core] = watch
        status.on_change = watch.wake  # a change seen from now on re-probes at once
        try:
            deadline = asyncio.get_running_loop().time() + config.core_startup_timeout
            await watch.wait_ready(deadline, config.core_startup_timeout)
            yield
        finally:
            await watch.close()

    return ctx


async def serve(config: Config, control: socket.socket) -> int:
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    serving: list[web.AppRunner] = []
    loop.add_signal_handler(signal.SIGHUP, lambda: server.reload_tls(serving))
    status = CoreStatus(lambda: None, stop_requested.set)
    await loop.connect_read_pipe(lambda: status, sys.stdin)
    try:
        runner = await server.unless_stopped(_start(config, control, status), stop_requested)
    except (CoreStartupError, OSError) as exc:
        log.error("gateway process cannot start: %s", exc)
        return 1
    if runner is None:
        return 0
    serving.append(runner)
    with contextlib.suppress(OSError):
        await loop.sock_sendall(control, READY)
    log.info("gateway process accepting connections")
    await stop_requested.wait()
    await server.stop(runner)
    return 0


async def _start(config: Config, control: socket.socket, status: CoreStatus) -> web.AppRunner:
    """Wait for the primary's go, then health-gate like the primary: the core answers and the link
    is open before this process accepts."""
    core_socket, listening_fds = await _receive_go(control)
    app = build_gateway_app(config, core_watch=core_watch_context(core_socket, status))
    runner = server.make_runner(config, app)
    try:
        await runner.setup()
        tls = runner.app.get(keys.tls)
        guard = ConnectionGuard(config)  # one guard for this process's share of the caps
        for fd in listening_fds:
            sock = socket.socket(fileno=fd)
            await GuardedSite(runner, guard, sock=sock, ssl_context=tls.listening if tls else None).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def _receive_go(control: socket.socket) -> tuple[str, list[int]]:
    """The core's socket path and the listening descriptors, sent once by the primary."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[tuple[bytes, list[int]]] = loop.create_future()

    def readable() -> None:
        try:
            data, fds, _, _ = socket.recv_fds(control, 4096, 16)
        except BlockingIOError:
            return
        except OSError as exc:
            received.set_exception(exc)
        else:
            received.set_result((data, fds))
        loop.remove_reader(control.fileno())

    loop.add_reader(control.fileno(), readable)
    try:
        data, fds = await received
    finally:
        loop.remove_reader(control.fileno())
    if not data or not fds:
        raise CoreStartupError("the primary gateway process closed the control socket before sending the go")
    return data.decode(), fds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway.gateway_worker")
    parser.add_argument("--control-fd", type=int, required=True)
    args = parser.parse_args(argv)
    config = read_config(sys.stdin.fileno())
    server.configure_logging(config)
    control = socket.socket(fileno=args.control_fd)
    control.setblocking(False)
    return server.run_loop(serve(config, control))


if __name__ == "__main__":
    sys.exit(main())
