"""The gateway's side of the framed link to the core workers (wire format: tracking_core.link.frames).

A few persistent connections to the private Unix socket, each carrying many requests at once.
Every worker accepts on the same socket, so the kernel decides which worker a new connection
reaches; each worker names itself (HELLO, its pid), and the pool keeps connecting until every
live worker is reached, then sends each request to the least-busy worker. A connection whose
worker is draining (GOAWAY) takes no new requests; one whose worker died fails its requests at
once (the proxy answers 503, or cuts a response already under way), never hangs.

A core that answers the preface with HTTP (a stand-in core, an older worker) is `NotFramed`: the
proxy then keeps using HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiohttp import StreamReader

from tracking_core.link import frames
from tracking_core.link.frames import ProtocolError

log = logging.getLogger("trackgate.link")

HELLO_TIMEOUT = 30.0  # a connection may wait in the socket's backlog while a worker starts
IDLE_TIMEOUT = 600.0  # a request the core sends nothing for this long is cut off
SWEEPS = 10  # idle checks per IDLE_TIMEOUT
PER_WORKER = 2  # connections the pool keeps to one worker (more are closed while it looks for others)


class LinkError(ConnectionError):
    """The request's stream or its connection failed."""


class NotFramed(LinkError):
    """The core answered the preface with HTTP: it does not speak the framed link. (Found at
    start-up, the proxy keeps to HTTP; later, a worker swapped for an HTTP-only one, a 503.)"""


class GatewayStream:
    """One request in flight: its head going out, the core's head and body coming back."""

    __slots__ = (
        "body",
        "connection",
        "content",
        "done",
        "flow",
        "gate",
        "head",
        "headers",
        "id",
        "idle",
        "reason",
        "sending",
        "status",
    )

    def __init__(self, connection: LinkConnection, stream_id: int) -> None:
        self.connection = connection
        self.id = stream_id
        self.head: asyncio.Future[None] = connection.loop.create_future()
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.body: bytes | None = None  # the whole body, when it came with the head
        self.content: StreamReader | None = None  # else: the body as it arrives
        self.gate = frames.SendGate()
        self.done = False
        self.flow = frames.StreamFlow(self._pause, self._resume)
        self.idle = 0  # idle sweeps since the core last sent something on this stream
        self.sending = False  # the request body is still going out

    # -- from the core -------------------------------------------------------------------------

    def on_response(self, payload: bytes, end: bool) -> None:
        self.idle = 0
        head, body = frames.split_head(payload)
        status, reason, flat = head
        if not isinstance(status, int) or not isinstance(reason, str):
            raise ProtocolError("a response head needs a status and a reason")
        self.status, self.reason = status, reason
        self.headers = frames.header_pairs(flat)  # type: ignore[arg-type]
        if end:
            self.body = body
            self._finish()
        else:
            self.content = StreamReader(self.flow, frames.WINDOW // 2, loop=self.connection.loop)  # type: ignore[arg-type]
            if body:
                self.content.feed_data(body)
        if not self.head.done():
            self.head.set_result(None)

    def on_data(self, data: bytes, end: bool) -> None:
        self.idle = 0
        content = self.content
        if content is None:
            raise ProtocolError(f"body data before the response head on stream {self.id}")
        if data:
            content.feed_data(data)
        if end:
            content.feed_eof()
            self._finish()

    def fail(self, exc: BaseException) -> None:
        """The core reset the stream, its connection closed, or the request body failed."""
        if self.done:
            return
        if not self.head.done():
            self.head.set_exception(exc)
            self.head.exception()  # retrieved: nobody may be waiting any more
        elif self.content is not None and not self.content.is_eof():
            self.content.set_exception(exc)
        self._finish()

    # -- to the core ---------------------------------------------------------------------------

    async def send_body(self, content: StreamReader) -> None:
        """Stream the client's body as DATA frames, waiting whenever the core asks for a pause.
        Never raises (but for cancellation): a failure fails the stream instead."""
        self.sending = True
        try:
            while not self.done:
                chunk = await content.read(frames.CHUNK)
                if not chunk:
                    await self._send(frames.frame(frames.DATA | frames.END, self.id))
                    return
                await self._send(frames.frame(frames.DATA, self.id, chunk))
        except Exception as exc:  # the client's upload or the link failed: give up on the request
            self.reset()
            self.fail(LinkError(f"the request body could not be sent: {exc!r}"))
        finally:
            self.sending = False

    async def _send(self, data: bytes) -> None:
        await self.gate.wait()
        if self.done:
            return  # the answer is complete (or the stream failed): the rest of the body is moot
        self.connection.write(data)
        await self.connection.drain()

    def reset(self) -> None:
        """Abandon the request (the client went away): the core stops working on it."""
        if not self.done:
            self.connection.write_control(frames.frame(frames.RESET, self.id))
            self.fail(LinkError("reset by the gateway"))

    def _pause(self) -> None:
        self.connection.write_control(frames.frame(frames.PAUSE, self.id))

    def _resume(self) -> None:
        self.connection.write_control(frames.frame(frames.RESUME, self.id))

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self.flow.connected = False
            self.gate.resume()  # a body sender waiting on a pause wakes up and stops
            self.connection.stream_done(self)


class LinkConnection(asyncio.Protocol):
    """One framed connection to whichever worker accepted it."""

    def __init__(self, pool: CoreLink) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.pid = 0
        self.hello: asyncio.Future[None] = self.loop.create_future()
        self.streams: dict[int, GatewayStream] = {}
        self.going_away = False
        self.closed = False
        self._next_id = 1
        self._decoder = frames.Decoder(self._on_frame)
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []

    @property
    def usable(self) -> bool:
        return not self.closed and not self.going_away and self.hello.done() and self.pid != 0

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        frames.widen_buffers(transport)
        self.transport.write(frames.PREFACE)

    def data_received(self, data: bytes) -> None:
        if not self.hello.done() and data[:1] != bytes([frames.HELLO]):
            # An HTTP server answers the preface with a status line; anything else is garbage.
            self.hello.set_exception(NotFramed(data[:64].decode("latin-1")))
            self.close()
            return
        try:
            self._decoder.feed(data)
        except (ProtocolError, ValueError, TypeError) as exc:
            log.warning("closing the link to core worker %s: %s", self.pid or "?", exc)
            self._lost(LinkError(f"the core sent a malformed frame: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(LinkError(f"the link to core worker {self.pid or '?'} closed"))

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writers()

    # -- used by streams -------------------------------------------------------------------------

    def open(self, method: str, target: str, headers: list[str], body: bytes, end: bool) -> GatewayStream:
        stream_id = self._next_id
        self._next_id = (stream_id + 1) & 0xFFFFFFFF or 1
        stream = GatewayStream(self, stream_id)
        self.streams[stream_id] = stream
        self.pool.load[self.pid] = self.pool.load.get(self.pid, 0) + 1
        self.write(frames.head_frame(frames.REQUEST, stream_id, [method, target, headers], body, end))
        return stream

    def stream_done(self, stream: GatewayStream) -> None:
        if self.streams.pop(stream.id, None) is not None:
            self.pool.load[self.pid] = self.pool.load.get(self.pid, 1) - 1

    def write(self, data: bytes) -> None:
        """Queue a frame; raises LinkError once the connection is closing (its streams fail)."""
        if self.transport is None or self.transport.is_closing():
            raise LinkError(f"the link to core worker {self.pid or '?'} is closed")
        self.transport.write(data)

    def write_control(self, data: bytes) -> None:
        """A PAUSE, RESUME or RESET: pointless, not an error, on a closing connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        if self._write_paused and not self.closed:
            waiter = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter
            if self.closed:
                raise LinkError(f"the link to core worker {self.pid or '?'} closed")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- internals -----------------------------------------------------------------------------

    def _on_frame(self, kind: int, end: bool, stream_id: int, payload: bytes) -> None:
        if kind == frames.HELLO:
            info = frames._loads(payload) if payload else {}
            self.pid = int(info.get("pid", 0)) if isinstance(info, dict) else 0
            if not self.hello.done():
                self.hello.set_result(None)
            return
        if kind == frames.GOAWAY:
            self.going_away = True
            self.pool.forget(self)
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            return  # a stream this side already finished or reset
        if kind == frames.RESPONSE:
            stream.on_response(payload, end)
        elif kind == frames.DATA:
            stream.on_data(payload, end)
        elif kind == frames.RESET:
            stream.fail(LinkError("the core abandoned the request"))
        elif kind == frames.PAUSE:
            stream.gate.pause()
        elif kind == frames.RESUME:
            stream.gate.resume()
        else:
            raise ProtocolError(f"frame type {kind} is not sent to a gateway")

    def _lost(self, exc: LinkError) -> None:
        if self.closed:
            return
        self.closed = True
        self.transport = None
        if not self.hello.done():
            self.hello.set_exception(exc)
        self.pool.forget(self)
        for stream in list(self.streams.values()):
            stream.fail(exc)
        self._wake_writers()

    def _wake_writers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class CoreLink:
    """The pool of framed connections to the core workers."""

    def __init__(self, socket_path: str, live_workers: Callable[[], int], idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.loop = asyncio.get_running_loop()
        self.idle_timeout = idle_timeout
        self._sweeper: asyncio.Task[None] | None = None
        self.socket_path = socket_path
        self._live_workers = live_workers
        self.connections: list[LinkConnection] = []
        # worker pid -> requests in flight to it (entries outlive their worker: a few ints)
        self.load: dict[int, int] = {}
        self._reached = 0  # distinct workers the pool has a connection to
        self._growing: asyncio.Task[None] | None = None
        self._closing = False

    async def connect(self) -> LinkConnection:
        """One more connection, once its worker said HELLO. Raises NotFramed, LinkError, OSError."""
        _, connection = await self.loop.create_unix_connection(lambda: LinkConnection(self), self.socket_path)
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                await connection.hello
        except BaseException:
            connection.close()
            raise
        if self._closing or connection.closed:
            connection.close()
            raise LinkError("the link is closing")
        self.connections.append(connection)
        if self._sweeper is None:
            self._sweeper = self.loop.create_task(self._sweep())
        self.load.setdefault(connection.pid, 0)
        self._reached = len({c.pid for c in self.connections})
        return connection

    async def open(self, method: str, target: str, headers: list[str], body: bytes, end: bool) -> GatewayStream:
        """Send a request's head (and `body`, the whole of it when `end`) to the least-busy worker."""
        connections = self.connections
        if not connections:
            await self._grow_now()
            connections = self.connections
        elif self._growing is None and self._wants_more():
            self._growing = self.loop.create_task(self._grow())
        load = self.load
        best = min(connections, key=lambda c: (load[c.pid], len(c.streams)))
        return best.open(method, target, headers, body, end)

    def forget(self, connection: LinkConnection) -> None:
        """Send no new requests on `connection` (closed, or its worker is draining)."""
        with contextlib.suppress(ValueError):
            self.connections.remove(connection)
        self._reached = len({c.pid for c in self.connections})

    async def close(self) -> None:
        self._closing = True
        for task in (self._growing, self._sweeper):
            if task is not None:
                task.cancel()
        for connection in list(self.connections):
            connection.close()
        self.connections.clear()

    # -- an idle core --------------------------------------------------------------------------

    async def _sweep(self) -> None:
        """Cut off a request the core has sent nothing for in `idle_timeout` s (once its body is
        sent, and while the gateway is not itself holding the core back): cheaper than a timer per
        request, and `idle_timeout` is coarse anyway. Streams of closed connections already failed."""
        interval = self.idle_timeout / SWEEPS
        while True:
            await asyncio.sleep(interval)
            for connection in self.connections:
                for stream in list(connection.streams.values()):
                    if stream.sending or stream.flow._reading_paused:
                        stream.idle = 0
                        continue
                    stream.idle += 1
                    if stream.idle > SWEEPS:
                        log.warning(
                            "core worker %s sent nothing for %g s; giving up on a request",
                            connection.pid,
                            self.idle_timeout,
                        )
                        stream.reset()

    # -- growing the pool ----------------------------------------------------------------------

    def _wants_more(self) -> bool:
        return self._reached < self._live_workers()

    async def _grow_now(self) -> None:
        if self._growing is None:
            self._growing = self.loop.create_task(self._grow(first=True))
        task = self._growing
        await asyncio.shield(task)
        if not self.connections:
            raise LinkError("no connection to the core")

    async def _grow(self, first: bool = False) -> None:
        """Connect until every live worker is reached. The kernel picks the worker that accepts, so
        an attempt may reach one already reached (say, while another is still starting): a worker
        keeps at most PER_WORKER connections, the surplus one is closed, and the next attempt
        waits a little longer (up to a second), so a worker that comes late is still found."""
        delay = 0.0
        try:
            if first or not self.connections:
                await self.connect()
            while self._wants_more() and not self._closing:
                if delay:
                    await asyncio.sleep(delay)
                reached = self._reached
                connection = await self.connect()
                if self._reached > reached:
                    delay = 0.0
                    continue
                if sum(c.pid == connection.pid for c in self.connections) > PER_WORKER:
                    self.forget(connection)  # before any request can be given to it
                    connection.close()
                delay = min(max(delay * 2, 0.01), 1.0)
        except (OSError, LinkError, TimeoutError) as exc:
            if first:
                raise LinkError(f"cannot connect to the core: {exc!r}") from exc
            log.debug("link pool: no more connections for now: %r", exc)
        finally:
            self._growing = None
