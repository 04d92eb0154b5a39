"""STAND-IN tracking-core worker, used only by the gateway's unit tests.

It speaks the supervisor contract of `tracking_core.worker` (`--listen-fd N`, config in
`_TRACKGATE_CORE_CONFIG`, `/_trackgate/alive`, `/_trackgate/ready`, drain on SIGTERM) but has no database.
What it adds is control the real core does not offer a test:

- FAKE_CORE_START_DELAY (seconds): sleep before serving, a slow-starting core;
- FAKE_CORE_READY_FILE (path): `/_trackgate/ready` answers 503 until this file exists;
- FAKE_CORE_EXIT_CODE: exit with this code at once, a core that cannot start.

Routes besides the two health checks (all real HTTP on the shared Unix socket):
`/pid`, `/echo/...` (method, raw path, raw headers, body length + sha256), `/slow?seconds=`,
`/big?mib=` (streamed, unknown length), `/drop` (the worker dies mid-body), `/die` (it dies before answering),
`/status/{code}`.

End-to-end tests use the real `tracking_core.worker`, never this.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import sys
import time

from aiohttp import web


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def ready(request: web.Request) -> web.Response:
    path = os.environ.get("FAKE_CORE_READY_FILE")
    if path and not os.path.exists(path):
        return web.json_response({"status": "database unreachable"}, status=503)
    return web.json_response({"status": "ok"})


async def pid(request: web.Request) -> web.Response:
    return web.json_response({"pid": os.getpid()})


async def echo(request: web.Request) -> web.Response:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_any():
        digest.update(chunk)
        size += len(chunk)
    return web.json_response(
        {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers],
            "body_size": size,
            "body_sha256": digest.hexdigest(),
        }
    )


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("seconds", "2")))
    return web.json_response({"slept": float(request.query.get("seconds", "2"))})


async def big(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()  # no length: chunked, the gateway must stream it
    response.content_type = "application/octet-stream"
    await response.prepare(request)
    block = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(int(request.query.get("mib", "8"))):
        await response.write(block)
    await response.write_eof()
    return response


async def drop(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_length = 10 * 1024 * 1024
    await response.prepare(request)
    await response.write(b"x" * 65536)
    await asyncio.sleep(0.1)
    os._exit(3)  # the worker dies mid-body, as a crashing core would


async def die(request: web.Request) -> web.Response:
    os._exit(3)  # the worker dies with the request in flight, before answering


async def status(request: web.Request) -> web.Response:
    return web.json_response(
        {"status": int(request.match_info["code"])}, status=int(request.match_info["code"])
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen-fd", type=int, required=True)
    args = parser.parse_args()
    json.loads(os.environ["_TRACKGATE_CORE_CONFIG"])  # the contract: config arrives in the environment
    if code := os.environ.get("FAKE_CORE_EXIT_CODE"):
        sys.exit(int(code))
    time.sleep(float(os.environ.get("FAKE_CORE_START_DELAY", "0")))
    app = web.Application()
    app.router.add_get("/_trackgate/alive", health)
    app.router.add_get("/_trackgate/ready", ready)
    app.router.add_get("/pid", pid)
    app.router.add_get("/slow", slow)
    app.router.add_get("/big", big)
    app.router.add_get("/drop", drop)
    app.router.add_route("*", "/die", die)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_route("*", "/echo{tail:.*}", echo)
    sock = socket.socket(fileno=args.listen_fd)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True, shutdown_timeout=30)


if __name__ == "__main__":
    main()
