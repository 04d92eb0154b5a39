"""Forward every request to the tracking core over its private Unix socket, streaming both ways.

Small bodies (known length under SMALL_BODY) are read whole: one write is cheaper than a stream.
Anything larger, or of unknown length, is streamed in chunks, so a 10 GB artifact keeps memory
flat. There is no total timeout: an upload may take as long as it takes; only an idle core
(no response bytes for READ_IDLE_TIMEOUT) is cut off.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from gateway import keys
from gateway.auth import upstream as auth_upstream
from gateway.errors import mlflow_error
from gateway.supervisor import CORE_URL

log = logging.getLogger("trackgate.proxy")

SMALL_BODY = 1024 * 1024
CHUNK = 256 * 1024
READ_IDLE_TIMEOUT = 600.0

# RFC 9110 §7.6.1 hop-by-hop headers, plus Expect (this hop already answered 100-continue) and
# Proxy-Connection (legacy). Content-Length is recomputed for each hop's framing.
HOP_BY_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)
# Identity travels from gateway to core in headers the core trusts because they arrive on its
# private socket, so a client must never be able to send them. Names are compared after folding
# case and "_" to "-": servers that map headers to variables (CGI/WSGI) make X_Forwarded_User
# and X-Forwarded-User the same, so both spellings are dropped.
IDENTITY_HEADERS = frozenset(
    {"x-forwarded-user", "x-forwarded-email", "x-forwarded-groups", "x-forwarded-preferred-username"}
)
IDENTITY_PREFIXES = ("x-trackgate-", "x-auth-request-")  # ours, and oauth2-proxy's


def canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-")


# Re-set below from what the gateway itself knows: the validated request id, the peer, the scheme.
_REQUEST_DROP = HOP_BY_HOP | {
    "x-request-id",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
}
_RESPONSE_DROP = HOP_BY_HOP | {"content-length"}  # recomputed for the client-facing framing


def _filtered(
    raw: Iterable[tuple[bytes, bytes]], drop: frozenset[str], *, identity: bool
) -> CIMultiDict[str]:
    """The raw header list (exact spelling, every duplicate, as sent; not aiohttp's parsed view)
    minus `drop`, the headers named in Connection (hop-by-hop for this message too, RFC 9110
    §7.6.1) and, with `identity`, every identity header. Runs per request: one pass, one fold."""
    kept: list[tuple[str, str, str]] = []
    named_in_connection: set[str] = set()
    for raw_name, raw_value in raw:
        name = raw_name.decode("utf-8", "replace")
        value = raw_value.decode("utf-8", "replace")
        folded = canonical(name)
        if folded == "connection":
            named_in_connection.update(canonical(token) for token in value.split(","))
        elif folded not in drop and not (
            identity and (folded in IDENTITY_HEADERS or folded.startswith(IDENTITY_PREFIXES))
        ):
            kept.append((folded, name, value))
    headers: CIMultiDict[str] = CIMultiDict()
    for folded, name, value in kept:
        if folded not in named_in_connection:
            headers.add(name, value)
    return headers


def upstream_request_headers(request: web.Request, request_id: str) -> CIMultiDict[str]:
    """The client's headers minus hop-by-hop and identity headers, plus forwarding information."""
    headers = _filtered(request.raw_headers, _REQUEST_DROP, identity=True)
    headers["X-Request-Id"] = request_id
    # What this gateway saw, replacing whatever the client claimed; behind a trusted reverse
    # proxy, gateway.forwarded has already re-seen the request as that proxy describes it.
    headers["X-Forwarded-For"] = request.remote or ""
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.host
    auth_upstream.apply(request, headers)  # the identity in, the consumed credential out
    return headers


def downstream_response_headers(upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
    return _filtered(upstream.raw_headers, _RESPONSE_DROP, identity=False)


def unavailable(message: str) -> web.Response:
    """503 in MLflow's error shape; the mlflow client retries 503 after Retry-After."""
    return mlflow_error(503, "TEMPORARILY_UNAVAILABLE", message, {"Retry-After": "1"})


async def core_session_context(app: web.Application) -> AsyncIterator[None]:
    """One keep-alive session to the core for the gateway's lifetime (after the supervisor's ctx)."""
    connector = aiohttp.UnixConnector(
        app[keys.supervisor].socket_path,
        # No pool cap: clients already bound concurrency, and a cap would queue requests silently.
        limit=0,
    )
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=READ_IDLE_TIMEOUT),
        # Bytes pass through untouched: no decompression, and none of aiohttp's own default
        # headers (an added Accept-Encoding would make the core compress for a client that
        # never asked for it).
        auto_decompress=False,
        skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    app[keys.core_session] = session
    yield
    await session.close()


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    """Forward one request to the core and relay its answer."""
    if not request.app[keys.supervisor].available:
        return unavailable("The tracking server is starting or restarting; retry shortly.")
    # raw_path keeps the query string and percent-encoding exactly as the client sent them.
    target = request.raw_path if request.raw_path.startswith("/") else str(request.rel_url)
    data: bytes | aiohttp.StreamReader | None = None
    if request.body_exists:
        length = request.content_length
        data = await request.read() if length is not None and length < SMALL_BODY else request.content
    headers = upstream_request_headers(request, request[keys.request_id])
    session = request.app[keys.core_session]
    try:
        async with session.request(
            request.method,
            URL(CORE_URL + target, encoded=True),
            headers=headers,
            data=data,
            allow_redirects=False,
        ) as upstream:
            return await _relay(request, upstream)
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
        if request.transport is None or request.transport.is_closing():
            log.debug("%s %s: the client went away: %r", request.method, request.path, exc)
        else:
            log.warning("%s %s: core connection failed: %r", request.method, request.path, exc)
        # Nothing went out to the client yet: a 503 makes the mlflow client retry.
        return unavailable("The tracking server lost its connection to the tracking core; retry shortly.")


async def _relay(request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
    headers = downstream_response_headers(upstream)
    length = upstream.content_length
    no_body = request.method == "HEAD" or upstream.status in (204, 304)
    if not no_body and length is not None and length < SMALL_BODY:
        body = await upstream.read()
        return web.Response(status=upstream.status, reason=upstream.reason, headers=headers, body=body)
    response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
    if length is not None:
        # Known length: keep it (no chunked framing), and HEAD answers keep the real size.
        response.content_length = length
    await response.prepare(request)
    while not no_body:
        try:
            chunk = await upstream.content.read(CHUNK)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            # Headers are already out, so a 503 is impossible. Close the client connection
            # without ending the body: the client sees a truncated response, never a
            # complete-looking one.
            log.warning("%s %s: core dropped the response mid-body: %r", request.method, request.path, exc)
            if request.transport is not None:
                request.transport.close()
            break
        if not chunk:
            break
        try:
            await response.write(chunk)
        except ConnectionError:
            break  # the client went away; aiohttp closes the connection
    return response
