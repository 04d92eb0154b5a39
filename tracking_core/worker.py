"""A tracking-core worker process: serves the core app on a socket the supervisor hands over.

Started by the gateway's supervisor as `python -m tracking_core.worker --listen-fd N`, with the
validated `CoreSettings` in `_TRACKGATE_CORE_CONFIG`. Every worker accepts on the same listening socket,
so the kernel spreads connections and a restarted worker picks up where a dead one stopped.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket

from aiohttp import web

from tracking_core.app import build_app
from tracking_core.contract import SETTINGS_ENV
from tracking_core.settings import CoreSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tracking_core.worker")
    parser.add_argument("--listen-fd", type=int, required=True)
    args = parser.parse_args(argv)
    config = CoreSettings.from_json(os.environ[SETTINGS_ENV])
    logging.basicConfig(
        level=config.log_level.upper(), format=f"%(asctime)s core[{os.getpid()}] %(levelname)s %(message)s"
    )
    sock = socket.socket(fileno=args.listen_fd)
    web.run_app(
        build_app(config),
        sock=sock,
        shutdown_timeout=config.drain_timeout,
        print=None,
        access_log=None,
        handle_signals=True,
    )


if __name__ == "__main__":
    main()
