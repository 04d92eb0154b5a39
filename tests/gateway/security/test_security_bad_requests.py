"""Finding 11 of issue 13: a malformed or oversized request is refused with one short log line
and an MLflow-shaped 400; no traceback, and never the credential it carried, in either."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

SECRET = "S3cretCredential"

# (id, raw request head): each one is refused before any handler runs.
MALFORMED = [
    ("oversized-authorization", f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {SECRET * 600}\r\n"),
    ("oversized-request-line", f"GET /echo?token={SECRET * 600} HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
    ("bad-header-name", f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthori zation: Bearer {SECRET}\r\n"),
    ("bad-method", f"G(T /echo?password={SECRET} HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
    ("bad-version", f"GET /echo?password={SECRET} HTTP/9.9\r\nHost: 127.0.0.1\r\n"),
    ("bad-content-length", f"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {SECRET}\r\n"),
    ("too-many-headers", "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"X-H{i}: {SECRET}\r\n" for i in range(200))),
]


@pytest.fixture
async def gw(gateway_factory: Callable[..., Awaitable[Any]]) -> Any:
    return await gateway_factory()


@pytest.mark.parametrize("head", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
async def test_refused_in_one_line_without_the_credential(gw: Any, head: str, caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(head.encode() + b"\r\n")
    response = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line.split(b" ")[1].startswith(b"4"), response[:200]
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error_code"] == "BAD_REQUEST" and SECRET not in body["message"]
    # (aiohttp's access log, quiet unless --log-level debug, has its own line per request.)
    refused = [r for r in caplog.records if r.levelno >= logging.INFO and r.name != "aiohttp.access"]
    assert len(refused) == 1, [r.getMessage() for r in refused]
    assert refused[0].exc_info is None and refused[0].levelno == logging.INFO
    assert SECRET[:6] not in refused[0].getMessage() and len(refused[0].getMessage()) < 200
    assert all(SECRET[:6] not in r.getMessage() and not r.exc_info for r in caplog.records)
