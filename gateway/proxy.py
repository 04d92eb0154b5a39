"""Forward every request to the tracking core over its private Unix socket, streaming both ways.

Over the framed link (gateway.core_link) when the core speaks it, which the real worker does;
over HTTP otherwise (a stand-in core, or `core_link = "http"`). Small bodies (known length under
SMALL_BODY) are read whole: one write is cheaper than a stream.
Anything larger, or of unknown length, is streamed in chunks, so a 10 GB artifact keeps memory
flat. There is no total timeout: an upload may take as long as it takes; only an idle core
(no response bytes for READ_IDLE_TIMEOUT) is cut off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from gateway import core_link, keys
from gateway.auth import upstream as auth_upstream
from gateway.core_watch import CORE_URL
from gateway.errors import mlflow_error
from gateway.limits import GuardedHandler
from tracking_core.contract import identity_headers

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


# Per raw header name as clients spell it: (keep it?, the name as text, is it Connection?, the
# folded name). A few dozen spellings recur; the cache is bounded so odd clients cannot grow it.
_NAME_CACHE: dict[bytes, tuple[bool, str, bool, str]] = {}
_NAME_CACHE_MAX = 512


def _classify(raw_name: bytes) -> tuple[bool, str, bool, str]:
    name = raw_name.decode("utf-8", "replace")
    folded = canonical(name)
    keep = folded not in _REQUEST_DROP and folded not in IDENTITY_HEADERS and not folded.startswith(IDENTITY_PREFIXES)
    entry = (keep and folded != "connection", name, folded == "connection", folded)
    if len(_NAME_CACHE) < _NAME_CACHE_MAX:
        _NAME_CACHE[raw_name] = entry
    return entry


def framed_request_headers(request: web.Request, request_id: str) -> list[str]:
    """`upstream_request_headers` as the link's flat [name, value, ...] list, in one pass over the
    raw headers (the per-request hot path). With an identity, the credential header it consumed
    is left out and the identity headers added, as auth_upstream.apply does; a consumed session
    cookie, which must be cut out of Cookie, takes the general way (same result)."""
    identity = request.get(keys.identity)
    consumed: frozenset[str] = frozenset()
    if identity is not None:
        spent = request.get(keys.consumed)
        if spent is not None and spent.cookies:
            return [part for pair in upstream_request_headers(request, request_id).items() for part in pair]
        consumed = spent.headers if spent is not None else consumed
    flat: list[str] = []
    named_in_connection: set[str] | None = None
    for raw_name, raw_value in request.raw_headers:
        keep, name, is_connection, folded = _NAME_CACHE.get(raw_name) or _classify(raw_name)
        if keep:
            if folded not in consumed:
                flat += (name, raw_value.decode("utf-8", "replace"))
        elif is_connection:
            named_in_connection = named_in_connection or set()
            named_in_connection.update(canonical(t) for t in raw_value.decode("utf-8", "replace").split(","))
    if named_in_connection:  # rare: headers a client declared hop-by-hop go too
        pairs = zip(flat[::2], flat[1::2], strict=True)
        flat = [part for n, v in pairs if canonical(n) not in named_in_connection for part in (n, v)]
    flat += (
        "X-Request-Id", request_id,
        "X-Forwarded-For", request.remote or "",
        "X-Forwarded-Proto", request.scheme,
        "X-Forwarded-Host", request.host,
    )  # fmt: skip
    if identity is not None:
        for pair in identity_headers(identity).items():
            flat += pair
    return flat


def downstream_response_headers(upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
    return _filtered(upstream.raw_headers, _RESPONSE_DROP, identity=False)


def unavailable(message: str) -> web.Response:
    """503 in MLflow's error shape; the mlflow client retries 503 after Retry-After."""
    return mlflow_error(503, "TEMPORARILY_UNAVAILABLE", message, {"Retry-After": "1"})


LOST_CORE = "The tracking server lost its connection to the tracking core; retry shortly."


def unavailable_to(request: web.Request, message: str) -> web.Response:
    """`unavailable`, closing the connection after it when the request's body is not all read:
    aiohttp would otherwise read and discard the rest for its lingering time (10 s), so the
    client of a multi-GB upload the core cannot take kept sending for that long before it heard."""
    if not request.content.is_eof() and isinstance(request.protocol, GuardedHandler):
        request.protocol.drop_unread_body()
    return unavailable(message)


async def core_session_context(app: web.Application) -> AsyncIterator[None]:
    """The framed link to the core, or one keep-alive HTTP session when the core does not speak
    frames, for the gateway's lifetime (after the core's ctx: the core is ready by now)."""
    core = app[keys.core]
    link: core_link.CoreLink | None = None
    if app[keys.config].core_link == "frames":
        link = core_link.CoreLink(core.socket_path, lambda: core.live_workers, READ_IDLE_TIMEOUT)
        try:
            await link.connect()
        except core_link.NotFramed:
            log.info("the tracking core does not speak the framed link; forwarding over HTTP")
            link = None
        except (OSError, core_link.LinkError, TimeoutError) as exc:
            # The core was ready a moment ago: connect again on the first request.
            log.warning("cannot open the link to the core yet: %r", exc)
    app[keys.core_link] = link
    connector = aiohttp.UnixConnector(
        core.socket_path,
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
    if link is not None:
        await link.close()
    await session.close()


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    """Forward one request to the core and relay its answer."""
    if not request.app[keys.core].available:
        return unavailable_to(request, "The tracking server is starting or restarting; retry shortly.")
    # raw_path keeps the query string and percent-encoding exactly as the client sent them.
    target = request.raw_path if request.raw_path.startswith("/") else str(request.rel_url)
    link = request.app[keys.core_link]
    if link is not None:
        return await _forward_framed(request, link, target)
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
        return unavailable_to(request, LOST_CORE)


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
    if not no_body:
        await _pump(request, response, lambda: upstream.content.read(CHUNK), _HTTP_FAILURES)
    return response


_HTTP_FAILURES = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


async def _pump(
    request: web.Request,
    response: web.StreamResponse,
    read: Callable[[], Awaitable[bytes]],
    failures: tuple[type[BaseException], ...],
) -> None:
    """Copy the core's response body to the client, chunk by chunk, until its end."""
    while True:
        try:
            chunk = await read()
        except failures as exc:
            # Headers are already out, so a 503 is impossible. Close the client connection
            # without ending the body: the client sees a truncated response, never a
            # complete-looking one.
            log.warning("%s %s: core dropped the response mid-body: %r", request.method, request.path, exc)
            if request.transport is not None:
                request.transport.close()
            return
        if not chunk:
            return
        try:
            await response.write(chunk)
        except ConnectionError:
            return  # the client went away; aiohttp closes the connection
        request[keys.bytes_streamed] = request.get(keys.bytes_streamed, 0) + len(chunk)


# -- the framed link ------------------------------------------------------------------------------

_LINK_FAILURES = (ConnectionError, core_link.LinkError, TimeoutError, core_link.ProtocolError)


async def _forward_framed(request: web.Request, link: core_link.CoreLink, target: str) -> web.StreamResponse:
    flat = framed_request_headers(request, request[keys.request_id])
    body = b""
    streamed = False
    if request.body_exists:
        length = request.content_length
        if length is not None and length < SMALL_BODY:
            body = await request.read()
        else:
            streamed = True
    sender: asyncio.Task[None] | None = None
    try:
        stream = await link.open(request.method, target, flat, body, not streamed)
    except _LINK_FAILURES as exc:
        log.warning("%s %s: cannot reach the core: %r", request.method, request.path, exc)
        return unavailable_to(request, LOST_CORE)
    try:
        if streamed:
            sender = asyncio.create_task(stream.send_body(request.content))
        try:
            await stream.head  # an idle core is cut off by the link's sweeper (READ_IDLE_TIMEOUT)
        except _LINK_FAILURES as exc:
            if request.transport is None or request.transport.is_closing():
                log.debug("%s %s: the client went away: %r", request.method, request.path, exc)
            else:
                log.warning("%s %s: core connection failed: %r", request.method, request.path, exc)
            return unavailable_to(request, LOST_CORE)
        return await _relay_framed(request, stream)
    finally:
        if sender is not None and not sender.done():
            sender.cancel()
        stream.reset()  # no-op once the answer is complete; else the core stops working on it


def _response_headers(pairs: list[tuple[str, str]]) -> tuple[CIMultiDict[str], int | None]:
    """The core's response headers minus hop-by-hop ones, and its Content-Length."""
    headers: CIMultiDict[str] = CIMultiDict()
    length = None
    named_in_connection: set[str] = set()
    for name, value in pairs:
        folded = name.lower()
        if folded == "content-length":
            length = int(value) if value.isdigit() else None
        elif folded == "connection":
            named_in_connection.update(canonical(token) for token in value.split(","))
        elif folded not in _RESPONSE_DROP:
            headers.add(name, value)
    for name in named_in_connection:
        headers.popall(name, None)
    return headers, length


async def _relay_framed(request: web.Request, stream: core_link.GatewayStream) -> web.StreamResponse:
    headers, length = _response_headers(stream.headers)
    no_body = request.method == "HEAD" or stream.status in (204, 304)
    if not no_body and length is not None and length < SMALL_BODY:
        # As over HTTP: a small body of known length is read whole and answered as one response
        # (its length is then known to the request log, and a core failing mid-body is still a 503).
        body = stream.body
        if body is None:
            assert stream.content is not None
            try:
                body = await stream.content.read()
            except _LINK_FAILURES as exc:
                log.warning("%s %s: core dropped the response mid-body: %r", request.method, request.path, exc)
                return unavailable_to(request, LOST_CORE)
        return web.Response(status=stream.status, reason=stream.reason, headers=headers, body=body)
    response = web.StreamResponse(status=stream.status, reason=stream.reason, headers=headers)
    if length is not None:
        response.content_length = length
    await response.prepare(request)
    if no_body:
        return response
    if stream.body is not None:
        if stream.body:
            await response.write(stream.body)
            request[keys.bytes_streamed] = len(stream.body)
        return response
    assert stream.content is not None
    await _pump(request, response, stream.content.readany, _LINK_FAILURES)
    return response
