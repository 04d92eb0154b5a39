"""The gateway tests' stand-in core (tests/gateway/fake_core.py), served over the framed link.

Same app, same controls (FAKE_CORE_* variables), same supervisor contract; only the server
differs: the core worker's own `serve` (frames, with plain HTTP for the supervisor's probes)
instead of aiohttp's HTTP-only `web.run_app`. tests/link/test_link_proxy.py runs the gateway's
proxy and supervisor tests against it, so each of them holds over frames as over HTTP.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.gateway import fake_core
from tracking_core.worker import serve


def run_framed(app: web.Application, *, sock: socket.socket, shutdown_timeout: float = 30, **_: Any) -> None:
    asyncio.run(serve(app, sock, shutdown_timeout))


if __name__ == "__main__":
    fake_core.web.run_app = run_framed  # type: ignore[assignment]  # fake_core calls web.run_app
    fake_core.main()
