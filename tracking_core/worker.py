"""A tracking-core worker process: serves the core app on a socket the supervisor hands over.

Started by the gateway's supervisor as `python -m tracking_core.worker --listen-fd N`, with the
validated `CoreSettings` in `_TRACKGATE_CORE_CONFIG`. Every worker accepts on the same listening socket,
so the kernel spreads connections and a restarted worker picks up where a dead one stopped.
"""

from __future__ import annotations

import argparse
import os
import socket

from aiohttp import web

from tracking_core import log_format, metrics
from tracking_core.app import build_app
from tracking_core.contract import SETTINGS_ENV
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
    web.run_app(
        app,
        sock=sock,
        shutdown_timeout=config.drain_timeout,
        print=None,
        access_log=None,
        handle_signals=True,
        # Request bodies are decoded by the API (routing.read_json_body), where a body that is not
        # what its Content-Encoding says becomes a 400; aiohttp's own decoding fails outside any
        # handler, as a logged traceback. Artifact bytes are stored as sent, as mlflow server does.
        auto_decompress=False,
    )


if __name__ == "__main__":
    main()
