"""Moving artifact bytes over HTTP: request bodies in, files out, both streamed in chunks.

Shared by the artifact proxy routes and the UI download routes. Nothing here holds more than
about one chunk per request, and nothing has a total timeout: a 10 GB transfer is fine as long
as bytes keep moving.
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import re
import socket
from collections.abc import AsyncIterator
from urllib.parse import quote

from aiohttp import web

from tracking_core.api.routing import json_response
from tracking_core.artifacts.repository import CHUNK_SIZE, ArtifactNotFound, ArtifactRepository, IsADirectory
from tracking_core.errors import invalid

log = logging.getLogger("trackgate.artifacts")

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# The send buffer of a Unix-socket connection (the gateway's) carrying a large download. The
# default (about 208 KiB) takes a 1 MiB chunk in five sends and event-loop turns on each side;
# 4 MiB (the usual net.core.wmem_max, which caps it) moved 512 MiB with about a third less CPU in
# core and gateway and twice the speed (bench/bench_stores.py). TCP keeps its own autotuning.
_UNIX_SEND_BUFFER = 4 * 1024 * 1024
# Names MLflow writes without a telling extension, which browsers should still show as text.
_TEXT_NAMES = {"MLmodel", "MLproject", "Dockerfile", "LICENSE", "requirements.txt", "conda.yaml"}
_TEXT_SUFFIXES = (".log", ".yaml", ".yml", ".md", ".txt", ".py", ".cfg", ".ini", ".toml", ".csv", ".tsv")


async def body_chunks(request: web.Request, size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
    """The request body in pieces of about `size` bytes.

    Fails (instead of ending quietly) when fewer bytes arrive than Content-Length announced,
    so a body cut short by a dropped connection is never stored as if it were complete.
    """
    expected = request.content_length
    received = 0
    buf = bytearray()
    while True:
        # One piece as it was received (a frame of the gateway's link, a read of the socket):
        # read(size) would join the pieces it gathers into a new buffer first.
        data, _ = await request.content.readchunk()
        if not data:
            if request.content.at_eof():
                break
            continue  # the end of an HTTP chunk of a chunked body: no bytes
        received += len(data)
        if not buf and len(data) >= size:
            yield data  # a whole chunk already: handed over as it is
            continue
        buf += data
        if len(buf) >= size:
            # Handed over, not copied: the consumer writes it out before asking for more.
            yield buf  # type: ignore[misc]
            buf = bytearray()
    if expected is not None and received != expected:
        raise ConnectionResetError(f"request body ended after {received} of {expected} bytes")
    if buf:
        yield buf  # type: ignore[misc]


def content_type(name: str) -> str:
    if name in _TEXT_NAMES or name.endswith(_TEXT_SUFFIXES):
        return "text/plain"
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def disposition(name: str) -> str:
    """`attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / 5987)."""
    fallback = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for one satisfiable `bytes=` range; None to send the whole file.

    Multiple or malformed ranges are ignored (RFC 9110 lets a server send the full content);
    a well-formed range outside the file raises HTTPRequestRangeNotSatisfiable.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:  # suffix: the last N bytes
        length = int(match[2])
        if length == 0 or size == 0:
            raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
        return max(0, size - length), size - 1
    start = int(match[1])
    end = int(match[2]) if match[2] else size - 1
    if match[2] and end < start:
        return None  # not a valid range at all: ignored
    if start >= size:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return start, min(end, size - 1)


def _widen_unix_send_buffer(request: web.Request) -> None:
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    if getattr(sock, "family", None) == socket.AF_UNIX:
        with contextlib.suppress(OSError):  # only a speed-up
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _UNIX_SEND_BUFFER)


async def send_file(
    request: web.Request, repo: ArtifactRepository, path: str, name: str
) -> web.StreamResponse:
    """Stream `path` from `repo` as a download named `name`, honouring Range and HEAD."""
    if not path:
        raise invalid("Invalid path")
    found = await repo.stat(path)
    if found is None:
        raise ArtifactNotFound(path)
    if found.is_dir:
        raise IsADirectory(path)
    size = found.size or 0
    try:
        byte_range = parse_range(request.headers.get("Range"), size)
    except web.HTTPRequestRangeNotSatisfiable as exc:
        # In MLflow's error shape like every other failure, with the size a client needs to retry.
        body = {
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": f"Range not satisfiable: the file has {size} bytes.",
        }
        refused = json_response(body, status=416)
        refused.headers["Content-Range"] = exc.headers["Content-Range"]
        return refused
    headers = {
        "Content-Type": content_type(name),
        "Content-Disposition": disposition(name),
        "Accept-Ranges": "bytes",
        # An uploaded .html or .svg must never run as a page of this site.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    start, end = byte_range if byte_range else (0, size - 1)
    if byte_range:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    response = web.StreamResponse(status=206 if byte_range else 200, headers=headers)
    response.content_length = max(0, end - start + 1)
    if request.method == "HEAD" or size == 0:
        await response.prepare(request)
        return response
    download = await repo.download(path, start, end)
    if response.content_length > CHUNK_SIZE:
        _widen_unix_send_buffer(request)
    try:
        await response.prepare(request)
        async for chunk in download.chunks:
            await response.write(chunk)
    except ConnectionResetError:
        log.debug("client went away while downloading %s", path)
    except Exception:
        # The status line is already out, so the failure cannot become a JSON error; cutting
        # the connection makes the client see a truncated body instead of a complete-looking one.
        log.exception("download of %s failed mid-stream", path)
        if request.transport is not None:
            request.transport.close()
    finally:
        await download.aclose()
    return response
