"""Slow and greedy clients: connection caps and read timeouts on the public port.

aiohttp has no header-read timeout, keeps an idle connection for an hour by default, and a
trickle of bytes restarts its keep-alive timer; 20,000 half-open connections from one host ran
the process out of file descriptors. So the public port is served by `GuardedSite`, whose
connections (`GuardedHandler`) are:
- counted: beyond `max_connections` in all, or `max_connections_per_address` from one client
  (trusted reverse proxies excepted: they carry everyone), a new connection gets a 503 and is
  closed at once, before any request is read;
- swept once a second: a request whose line and headers are not complete `header_read_timeout`
  seconds after its first byte (or after the connection opened) gets a 408 and is closed; a body
  that stalls `body_read_timeout` seconds while the gateway waits for it is closed (an upload
  that keeps moving, or waits on the core, is never cut), and so is one that reads nothing of
  its response for as long; an idle keep-alive connection closes after `keepalive_timeout`
  (aiohttp's own timer);
- reported once: the first such event of a kind is logged, later ones are counted and summed
  up in one line a minute, not one line per connection;
- refused plainly when malformed: one info line and an MLflow-shaped 400 that never quote the
  offending bytes (an oversized Authorization header is a credential).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway.config import Config
from gateway.errors import mlflow_error
from gateway.forwarded import TrustedProxies
from gateway.tls import HandshakeFailures, TlsAcceptor

log = logging.getLogger("trackgate.limits")

SWEEP_INTERVAL = 1.0
REPORT_INTERVAL = 60.0
FD_HEADROOM = 128  # descriptors kept for the core socket, the database, logs and TLS files

_REFUSED = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
# What a client is told (and the log says) for a request aiohttp's parser refused: fixed words,
# never the parser's message, which quotes the offending bytes.
_BAD_REQUEST_REASONS: dict[type[BaseException], str] = {
    http_exceptions.LineTooLong: "A request line or header field is too long.",
    http_exceptions.BadHttpMethod: "Malformed request method.",
    http_exceptions.BadStatusLine: "Malformed request line.",
    http_exceptions.InvalidHeader: "Malformed header field.",
    http_exceptions.InvalidURLError: "Malformed request target.",
    http_exceptions.ContentLengthError: "Request body does not match its Content-Length.",
    http_exceptions.TransferEncodingError: "Malformed chunked request body.",
}


class Notices:
    """One log line per kind of event and interval, however many events there were."""

    def __init__(self) -> None:
        self._suppressed: Counter[str] = Counter()
        self._last: dict[str, float] = {}

    def note(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, float("-inf")) >= REPORT_INTERVAL:
            self._last[kind] = now
            log.warning("%s (such events are reported at most once a minute)", message)
        else:
            self._suppressed[kind] += 1

    def flush(self) -> None:
        now = time.monotonic()
        for kind, count in list(self._suppressed.items()):
            if count and now - self._last[kind] >= REPORT_INTERVAL:
                log.warning("%d more %s in the last %d s", count, kind, int(now - self._last[kind]))
                self._last[kind] = now
                del self._suppressed[kind]


class ConnectionGuard:
    """The caps, the timeouts and the counts for one listening port in one gateway process.

    With several gateway processes on the port (gateway_workers), each holds its share of the caps
    (divided, rounded down, at least 1), so the server as a whole never exceeds what the operator
    set; the kernel spreads connections unevenly, so a client may be refused a little early, never
    late. The descriptor budget is each process's own (ulimit -n is per process)."""

    def __init__(self, config: Config) -> None:
        self.header_timeout = config.header_read_timeout
        self.body_timeout = config.body_read_timeout
        processes = config.gateway_processes
        share = max(1, config.max_connections // processes)
        self.max_total = min(share, _descriptor_budget(share))
        self.max_per_address = max(1, config.max_connections_per_address // processes)
        self._trusted = TrustedProxies(config.trusted_proxies) if config.trusted_proxies else None
        self.total = 0
        self.per_address: Counter[str] = Counter()
        self.notices = Notices()

    def admit(self, address: str) -> bool:
        if self.total >= self.max_total:
            self.notices.note("connections refused at the cap",
                              f"refusing connections: {self.total} open, max_connections is {self.max_total}")
            return False
        trusted = self._trusted is not None and self._trusted.trusts(address)
        if not trusted and self.per_address[address] >= self.max_per_address:
            self.notices.note("connections refused at the per-address cap",
                              f"refusing connections from {address}: {self.per_address[address]} open, "
                              f"max_connections_per_address is {self.max_per_address}")
            return False
        self.total += 1
        self.per_address[address] += 1
        return True

    def release(self, address: str) -> None:
        self.total -= 1
        self.per_address[address] -= 1
        if self.per_address[address] <= 0:
            del self.per_address[address]

    def sweep(self, handlers: list[Any]) -> None:
        now = time.monotonic()
        for handler in handlers:
            if isinstance(handler, GuardedHandler):
                handler.check(self, now)
        self.notices.flush()


def _descriptor_budget(wanted: int) -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft - FD_HEADROOM >= wanted:
        return wanted
    budget = max(1, soft - FD_HEADROOM)
    log.warning("max_connections %d lowered to %d: the process may open %d files (ulimit -n)", wanted, budget, soft)
    return budget


class GuardedHandler(RequestHandler):
    """aiohttp's connection handler, counted against the caps and watched by the sweeper.

    Reads a few of RequestHandler's slots (_waiter: waiting for the next request; _current_request;
    _reading_paused: backpressure) because aiohttp offers no public view of a connection's phase."""

    __slots__ = ("_address", "_admitted", "_guard", "_headers_since", "_last_data", "_write_paused_since")

    def __init__(self, guard: ConnectionGuard, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard
        self._address = ""
        self._admitted = False
        self._headers_since: float | None = None
        self._last_data = time.monotonic()
        self._write_paused_since: float | None = None

    def drop_unread_body(self) -> None:
        """Close the connection once the current answer is sent, without first reading and
        discarding the rest of the request body for aiohttp's lingering time (its _lingering_time
        slot; 0 skips the lingering read and closes the unfinished request)."""
        self._lingering_time = 0.0

    def pause_writing(self) -> None:
        # The client is not taking our bytes as fast as we send them; resume_writing is progress.
        self._write_paused_since = time.monotonic()
        super().pause_writing()

    def resume_writing(self) -> None:
        self._write_paused_since = None
        super().resume_writing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self._admitted = self._guard.admit(self._address)
        if not self._admitted:
            self._refuse(_REFUSED)
            return
        # A connection that sends nothing is held to the header timeout too, not to keep-alive's.
        self._headers_since = time.monotonic()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._admitted:
            self._admitted = False
            self._guard.release(self._address)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self._last_data = now
        parsed = self._request_count
        super().data_received(data)
        if self._request_count > parsed:
            self._headers_since = None  # a request line and headers are complete
        elif self._headers_since is None and self._waiter is not None:
            self._headers_since = now  # the first bytes of the next request on a kept-alive connection

    def check(self, guard: ConnectionGuard, now: float) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        idle = self._current_request is None
        if idle and self._headers_since is not None and now - self._headers_since > guard.header_timeout:
            guard.notices.note("connections closed for slow headers",
                               f"closing a connection from {self._address}: no complete request headers in "
                               f"{guard.header_timeout:g} s (header_read_timeout)")
            self._refuse(_TIMEOUT)
            return
        if self._write_paused_since is not None and now - self._write_paused_since > guard.body_timeout:
            guard.notices.note("connections closed for a client not reading",
                               f"closing a connection from {self._address}: it read nothing of its response "
                               f"for {guard.body_timeout:g} s (body_read_timeout)")
            self._abort()
            return
        request = self._current_request
        if (request is not None and not request.content.is_eof() and not self._reading_paused
                and now - self._last_data > guard.body_timeout):
            guard.notices.note("connections closed for a stalled body",
                               f"closing a connection from {self._address}: its request body stalled for "
                               f"{guard.body_timeout:g} s (body_read_timeout)")
            self._abort()

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A request aiohttp could not parse (a header too long, a bad request line...): one short
        info line and an MLflow-shaped answer. aiohttp's own logs it at ERROR with a traceback and
        echoes the offending bytes, a credential among them, in its answer and its log."""
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        reason = _BAD_REQUEST_REASONS.get(type(exc), "Malformed HTTP request.")
        log.info("refused a malformed request from %s: %s", self._address or request.remote, reason)
        response = mlflow_error(status, "BAD_REQUEST", reason)
        response.force_close()
        return response

    def _abort(self) -> None:
        """Close at once, with no answer (the client is mid-request or not reading)."""
        transport = self.transport
        self.force_close()
        if transport is not None:
            transport.abort()

    def _refuse(self, answer: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            with contextlib.suppress(Exception):
                transport.write(answer)  # type: ignore[attr-defined]
        self.force_close()  # closes the transport once the answer is flushed


class GuardedSite(web.TCPSite):
    """A TCPSite whose connections are GuardedHandlers, swept by one task while it listens; on a
    socket already listening (`sock`, inherited by an extra gateway process) or on host and port."""

    def __init__(
        self, runner: web.BaseRunner, guard: ConnectionGuard, *args: Any, sock: socket.socket | None = None,
        accept: bool = True, **kwargs: Any,
    ) -> None:
        """`accept=False`: listen (connections wait in the backlog) but accept only after `accept()`."""
        super().__init__(runner, *args, **kwargs)
        self.guard = guard
        self._sock = sock
        self._accept = accept
        self._sweeper: asyncio.Task[None] | None = None

    async def accept(self) -> None:
        assert self._server is not None
        await self._server.start_serving()

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        settings = dict(server._kwargs)  # the runner's handler settings (keepalive_timeout, ...)

        def make_handler() -> GuardedHandler:
            return GuardedHandler(self.guard, server, loop=loop, **settings)

        factory: Callable[[], asyncio.Protocol] = make_handler
        if self._ssl_context is not None:
            # The handshake runs in TlsAcceptor rather than in create_server(ssl=...), so that a
            # failed one is logged (asyncio keeps those to its debug log).
            context, failures = self._ssl_context, HandshakeFailures()

            def factory() -> asyncio.Protocol:
                return TlsAcceptor(context, make_handler, failures)

        if self._sock is not None:
            self._server = await loop.create_server(
                factory, sock=self._sock, backlog=self._backlog, start_serving=self._accept
            )
        else:
            self._server = await loop.create_server(
                factory, self._host, self._port, backlog=self._backlog,
                reuse_address=self._reuse_address, reuse_port=self._reuse_port, start_serving=self._accept,
            )
        self._sweeper = asyncio.create_task(self._sweep(server))

    def bind_siblings(self) -> list[socket.socket]:
        """More listening sockets on this site's addresses, for another gateway process: the site
        must have been started with `reuse_port=True` (SO_REUSEPORT: the kernel spreads new
        connections over the sockets of the port)."""
        assert self._server is not None
        siblings = []
        try:
            for listening in self._server.sockets:
                sock = socket.socket(listening.family, socket.SOCK_STREAM)
                siblings.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if listening.family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as asyncio binds
                sock.bind(listening.getsockname())
                sock.listen(self._backlog)
        except OSError:
            for sock in siblings:
                sock.close()
            raise
        return siblings

    async def _sweep(self, server: web.Server) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            self.guard.sweep(server.connections)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await super().stop()
