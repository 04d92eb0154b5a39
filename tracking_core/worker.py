"""A tracking-core worker process: serves the core app on a socket the supervisor hands over.

Started by the gateway's supervisor as `python -m tracking_core.worker --listen-fd N`, with the
validated `CoreSettings` in `_TRACKGATE_CORE_CONFIG`. Every worker accepts on the same listening socket,
so the kernel spreads connections and a restarted worker picks up where a dead one stopped.

The gateway's requests arrive as frames (`tracking_core.link`); a connection that opens with
plain HTTP (the supervisor's health probes) is served by aiohttp's own HTTP protocol. Both reach
the same app. SIGTERM drains: no new connections, GOAWAY to the gateway, in-flight requests
finish (up to drain_timeout), then the app's cleanup.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket

from aiohttp import web

from tracking_core import log_format, metrics
from tracking_core.app import build_app
from tracking_core.contract import SETTINGS_ENV
from tracking_core.link.server import LinkServer
from tracking_core.settings import CoreSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tracking_core.worker")
    parser.add_argument("--listen-fd", type=int, required=True)
    args = parser.parse_args(argv)
    config = CoreSettings.from_json(os.environ[SETTINGS_ENV])
    log_format.configure(
        config.log_level, config.log_format, "core",
        text_format=f"%(asctime)s core[{os.getpid()}] %(levelname)s %(message)s",
    )
    sock = socket.socket(fileno=args.listen_fd)
    app = build_app(config)
    # Outermost, and here rather than in build_app: it serves this process's log lines only.
    app.middlewares.insert(0, log_format.request_context)
    app.cleanup_ctx.append(metrics.pool_metrics_ctx)  # last: it reads the stores' engine
    asyncio.run(serve(app, sock, config.drain_timeout))


async def serve(app: web.Application, sock: socket.socket, drain_timeout: float) -> None:
    """Serve `app` on the listening `sock` (frames or HTTP) until SIGTERM / SIGINT, then drain."""
    loop = asyncio.get_running_loop()
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=drain_timeout,
        access_log=None,
        # Request bodies are decoded by the API (routing.read_json_body), where a body that is not
        # what its Content-Encoding says becomes a 400; aiohttp's own decoding fails outside any
        # handler, as a logged traceback. Artifact bytes are stored as sent, as mlflow server does.
        auto_decompress=False,
    )
    await runner.setup()  # the app's startup and cleanup contexts
    try:
        assert runner.server is not None
        link = LinkServer(runner.server, loop)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        listener = await loop.create_server(link.protocol_factory, sock=sock)
        await stop.wait()
        listener.close()  # our copy of the shared socket only: the other workers keep accepting
        await link.drain(drain_timeout)
    finally:
        await runner.cleanup()  # HTTP connections (bounded by shutdown_timeout), then the app


if __name__ == "__main__":
    main()
