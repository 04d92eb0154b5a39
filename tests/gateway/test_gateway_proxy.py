"""The proxy, through a real gateway on loopback and the stand-in core that echoes what it got."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway import __version__ as TRACKGATE_VERSION


async def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send exactly these request bytes (no client library normalising names or paths)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, payload


async def echo_headers(port: int, extra: list[str]) -> list[tuple[str, str]]:
    head = "\n".join(["GET /echo HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close", *extra, ""])
    status, _, body = await raw_request(port, head)
    assert status == 200, body
    return [(k, v) for k, v in json.loads(body)["headers"]]


# (id, headers the client sends, header names that must NOT reach the core, that MUST reach it)
HEADER_CASES = [
    ("canonical", ["X-Forwarded-User: mallory"], ["x-forwarded-user"], []),
    ("lowercase", ["x-forwarded-email: m@evil.example"], ["x-forwarded-email"], []),
    ("uppercase", ["X-FORWARDED-GROUPS: admins"], ["x-forwarded-groups"], []),
    ("preferred-username", ["X-Forwarded-Preferred-Username: root"], ["x-forwarded-preferred-username"], []),
    ("underscores", ["X_Forwarded_User: mallory"], ["x_forwarded_user"], []),
    ("mixed-separators", ["x-forwarded_email: m@evil.example"], ["x-forwarded_email"], []),
    ("duplicates", ["X-Forwarded-User: a", "x-forwarded-user: b"], ["x-forwarded-user"], []),
    (
        "trackgate-prefix",
        ["X-Trackgate-Identity: admin", "x_trackgate_role: admin"],
        ["x-trackgate-identity", "x_trackgate_role"],
        [],
    ),
    ("oauth2-proxy-names", ["X-Auth-Request-User: mallory"], ["x-auth-request-user"], []),
    (
        "hop-by-hop",
        ["Keep-Alive: timeout=5", "TE: trailers", "Proxy-Authorization: Basic eA=="],
        ["keep-alive", "te", "proxy-authorization"],
        [],
    ),
    ("named-in-connection", ["Connection: close, X-Hop-Secret", "X-Hop-Secret: 1"], ["x-hop-secret"], []),
    (
        "ordinary-kept",
        ["X-Custom: 1", "Authorization: Bearer abc", "X-Forwarded-Userish: ok"],
        [],
        ["x-custom", "authorization", "x-forwarded-userish"],
    ),
]


@pytest.mark.parametrize(
    ("sent", "stripped", "kept"), [c[1:] for c in HEADER_CASES], ids=[c[0] for c in HEADER_CASES]
)
async def test_header_forwarding(gw: Any, sent: list[str], stripped: list[str], kept: list[str]) -> None:
    received = await echo_headers(gw.port, sent)
    names = [name.lower() for name, _ in received]
    for name in stripped:
        assert name not in names
    for name in kept:
        assert name in names
    assert not [
        n
        for n in names
        if n.replace("_", "-").startswith(("x-forwarded-user", "x-trackgate-")) and n != "x-forwarded-userish"
    ]


@pytest.mark.parametrize(
    "line",
    ["X-Forwarded-User : mallory", "X-Forwarded-User\t: mallory", " X-Forwarded-User: mallory"],
    ids=["space-before-colon", "tab-before-colon", "leading-space"],
)
async def test_disguised_header_names_are_rejected_outright(gw: Any, line: str) -> None:
    # Spellings a lenient parser might fold into X-Forwarded-User never reach the proxy at all.
    head = "\n".join(["GET /echo HTTP/1.1", "Host: localhost", line, "Connection: close", ""])
    status, _, _ = await raw_request(gw.port, head)
    assert status == 400


async def test_forwarding_headers_say_what_the_gateway_saw(gw: Any) -> None:
    claimed = [
        "X-Forwarded-For: 203.0.113.9",
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: evil.example",
        "Forwarded: for=203.0.113.9;proto=https",
    ]
    received = await echo_headers(gw.port, claimed)
    names = [k.lower() for k, _ in received]
    values = dict((k.lower(), v) for k, v in received)
    assert "forwarded" not in names
    assert names.count("x-forwarded-for") == 1
    assert values["x-forwarded-for"] == "127.0.0.1"
    assert values["x-forwarded-proto"] == "http"
    assert values["x-forwarded-host"] == f"127.0.0.1:{gw.port}"
    assert values["host"] == f"127.0.0.1:{gw.port}"


@pytest.mark.parametrize(
    "target",
    [
        "/echo/a%2Fb/%7E?x=1+2&y=%20&z=%2f&e=&e=2",
        "/echo/../echo/x?q=a%26b",
        "/echo?filter=metrics.acc%20%3E%200.5",
    ],
    ids=["encoded", "dot-segments", "search-filter"],
)
async def test_path_and_query_reach_the_core_exactly(gw: Any, target: str) -> None:
    status, _, body = await raw_request(gw.port, f"GET {target} HTTP/1.1\nHost: localhost\nConnection: close\n")
    assert status == 200
    assert json.loads(body)["raw_path"] == target


async def test_request_id_is_forwarded_and_echoed(gw: Any) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(gw.url + "/echo", headers={"X-Request-Id": "job-42.attempt-1"}) as resp:
            sent = dict((k.lower(), v) for k, v in (await resp.json())["headers"])
            assert resp.headers["X-Request-Id"] == "job-42.attempt-1"
            assert sent["x-request-id"] == "job-42.attempt-1"
        async with client.get(gw.url + "/echo", headers={"X-Request-Id": "bad id\twith spaces"}) as resp:
            generated = resp.headers["X-Request-Id"]
            assert generated != "bad id\twith spaces" and len(generated) == 32
        async with client.get(gw.url + "/echo") as resp:
            assert len(resp.headers["X-Request-Id"]) == 32


@pytest.mark.parametrize("path", ["/echo", "/healthz", "/readyz", "/status/404", "/big?mib=1"])
async def test_every_response_carries_the_version(gw: Any, path: str) -> None:
    async with aiohttp.ClientSession() as client, client.get(gw.url + path) as resp:
        await resp.read()
        assert resp.headers["X-Trackgate-Version"] == TRACKGATE_VERSION


async def test_status_and_body_pass_through(gw: Any) -> None:
    async with aiohttp.ClientSession() as client, client.post(gw.url + "/status/418") as resp:
        assert resp.status == 418
        assert await resp.json() == {"status": 418}


async def _chunks(total: int, size: int = 100_000) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = os.urandom(min(size, total - sent))
        sent += len(chunk)
        yield chunk


@pytest.mark.parametrize("size", [0, 1000, 5 * 1024 * 1024], ids=["empty", "small", "large"])
async def test_bodies_with_length_arrive_intact(gw: Any, size: int) -> None:
    body = os.urandom(size)
    async with aiohttp.ClientSession() as client, client.put(gw.url + "/echo", data=body) as resp:
        got = await resp.json()
    assert got["body_size"] == size
    assert got["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert got["method"] == "PUT"


async def test_chunked_upload_streams_through(gw: Any) -> None:
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        async for chunk in _chunks(3 * 1024 * 1024):
            digest.update(chunk)
            yield chunk

    async with aiohttp.ClientSession() as client, client.post(gw.url + "/echo", data=body()) as resp:
        got = await resp.json()
    assert got["body_size"] == 3 * 1024 * 1024
    assert got["body_sha256"] == digest.hexdigest()


async def test_compressed_request_body_is_forwarded_untouched(gw: Any) -> None:
    plain = b'{"name": "exp"}' * 1000
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            gw.url + "/echo", data=gzip.compress(plain), headers={"Content-Encoding": "gzip"}
        ) as resp,
    ):
        got = await resp.json()
    # The stand-in core decompresses: it could only do that if the gzip bytes arrived as sent.
    assert got["body_sha256"] == hashlib.sha256(plain).hexdigest()


async def test_large_response_streams_back(gw: Any) -> None:
    digest = hashlib.sha256()
    size = 0
    async with aiohttp.ClientSession() as client, client.get(gw.url + "/big?mib=32") as resp:
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        async for chunk in resp.content.iter_chunked(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    expected = hashlib.sha256(bytes(range(256)) * 4096 * 32).hexdigest()
    assert (size, digest.hexdigest()) == (32 * 1024 * 1024, expected)


async def test_head_keeps_the_content_length(gw: Any) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(gw.url + "/status/200") as resp:
            get_length = len(await resp.read())
        async with client.head(gw.url + "/status/200") as resp:
            assert resp.status == 200
            assert int(resp.headers["Content-Length"]) == get_length
            assert await resp.read() == b""


async def test_core_dying_before_answering_gives_retryable_503(gw: Any) -> None:
    async with aiohttp.ClientSession() as client, client.post(gw.url + "/die", data=b"x") as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        body = await resp.json()
    assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert body["message"]


async def test_core_dying_mid_body_truncates_the_response(gw: Any) -> None:
    async with aiohttp.ClientSession() as client, client.get(gw.url + "/drop") as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()  # never a complete-looking body
