"""The core's side of the framed link: frames in, aiohttp requests through the app, frames out.

A connection that opens with the link's PREFACE speaks frames; any other is handed to aiohttp's
own HTTP protocol (the supervisor's health probes, an operator's `curl --unix-socket`). Each
framed request becomes an ordinary `web.Request`, built by the app's own request factory and
passed to its own handler chain (middlewares, router), exactly what aiohttp's HTTP protocol does
after parsing; only the transport differs. Responses go back through an `AbstractStreamWriter`
that turns aiohttp's status line, headers and body writes into frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from tracking_core.link import frames
from tracking_core.link.frames import ProtocolError

log = logging.getLogger("trackgate.core.link")

# Not relayed in a response head: the link frames the body itself (aiohttp's response adds these
# for HTTP/1.1 framing and keep-alive).
_RESPONSE_SKIP = frozenset({"transfer-encoding", "connection", "keep-alive"})


class LinkServer:
    """The listening side. `protocol_factory` goes to `loop.create_server`; `drain` on SIGTERM."""

    def __init__(self, server: web.Server, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.connections: set[CoreConnection] = set()
        self.streams = 0  # requests in flight over every framed connection
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def protocol_factory(self) -> asyncio.Protocol:
        return _Sniffer(self)

    def stream_started(self) -> None:
        self.streams += 1
        self._idle.clear()

    def stream_ended(self) -> None:
        self.streams -= 1
        if not self.streams:
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Tell every gateway connection to send nothing new; wait up to `timeout` s for the
        requests in flight; then close the framed connections. True if all finished."""
        self.draining = True
        for connection in list(self.connections):
            connection.goaway()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        finished = not self.streams
        if not finished:
            log.warning("%d framed request(s) still running after %g s; cutting them off", self.streams, timeout)
        for connection in list(self.connections):
            connection.close()
        return finished


class _Sniffer(asyncio.Protocol):
    """Reads just enough of a new connection to tell the link's preface from HTTP."""

    def __init__(self, link: LinkServer) -> None:
        self._link = link
        self._transport: asyncio.Transport | None = None
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        self._buffer += data
        seen = self._buffer[: len(frames.PREFACE)]
        if not frames.PREFACE.startswith(seen):
            protocol: asyncio.Protocol = self._link.server()  # aiohttp's HTTP/1.1 protocol
        elif len(self._buffer) >= len(frames.PREFACE):
            protocol = CoreConnection(self._link)
            self._buffer = self._buffer[len(frames.PREFACE) :]
        else:
            return
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._buffer:
            protocol.data_received(self._buffer)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


class CoreConnection(asyncio.Protocol):
    """One framed connection from the gateway, carrying many requests at once."""

    def __init__(self, link: LinkServer) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, CoreStream] = {}
        self._decoder = frames.Decoder(self._on_frame)
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._goaway_sent = False

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        frames.widen_buffers(transport)
        self.link.connections.add(self)
        self.write(frames.frame(frames.HELLO, 0, frames._dumps({"pid": os.getpid()})))
        if self.link.draining:
            self.goaway()

    def data_received(self, data: bytes) -> None:
        try:
            self._decoder.feed(data)
        except (ProtocolError, ValueError, TypeError) as exc:  # ValueError: e.g. a target yarl refuses
            log.warning("closing a gateway link that sent a malformed frame: %s", exc)
            self.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.link.connections.discard(self)
        for stream in list(self.streams.values()):
            stream.abandon("the gateway link closed")
        self.streams.clear()
        self._wake_writers()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writers()

    # -- frames ----------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        if self._write_paused and self.transport is not None:
            waiter = self.link.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _wake_writers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def goaway(self) -> None:
        if not self._goaway_sent:
            self._goaway_sent = True
            self.write(frames.frame(frames.GOAWAY, 0))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _on_frame(self, kind: int, end: bool, stream_id: int, payload: bytes) -> None:
        if kind == frames.REQUEST:
            if stream_id in self.streams:
                raise ProtocolError(f"stream {stream_id} is already open")
            self._start(stream_id, end, payload)
            return
        stream = self.streams.get(stream_id)
        if kind == frames.DATA:
            if stream is not None:  # else: a stream this side already finished or reset
                stream.receive(payload, end)
        elif kind == frames.RESET:
            if stream is not None:
                stream.abandon("the gateway reset the request")
        elif kind == frames.PAUSE:
            if stream is not None:
                stream.gate.pause()
        elif kind == frames.RESUME:
            if stream is not None:
                stream.gate.resume()
        else:
            raise ProtocolError(f"frame type {kind} is not sent to a core")

    def _start(self, stream_id: int, end: bool, payload: bytes) -> None:
        head, body = frames.split_head(payload)
        method, target, flat = head
        if not isinstance(method, str) or not isinstance(target, str) or not target.startswith("/"):
            raise ProtocolError("a request head needs a method and an origin-form target")
        try:
            "".join(flat)  # type: ignore[arg-type]  # the cheapest "every item is a str"
            headers = CIMultiDictProxy(CIMultiDict(zip(flat[::2], flat[1::2], strict=True)))  # type: ignore[index]
        except TypeError:  # a name or value that is not a string
            raise ProtocolError("header names and values must be strings") from None
        stream = CoreStream(self, stream_id)
        if end and not body:
            payload_reader: StreamReader = EMPTY_PAYLOAD  # what aiohttp gives a request without a body
        else:
            payload_reader = StreamReader(stream.flow, frames.WINDOW // 2, loop=self.link.loop)
            if body:
                payload_reader.feed_data(body)
            if end:
                payload_reader.feed_eof()
        stream.payload = payload_reader
        self.streams[stream_id] = stream
        # As aiohttp's own parser builds an origin-form target's URL.
        path, _, fragment = target.partition("#")
        path, _, query = path.partition("?")
        message = RawRequestMessage(
            method,
            target,
            HttpVersion11,
            headers,
            _RawHeaders(flat),  # type: ignore[arg-type]
            False,  # should_close: the link stays open
            None,
            False,
            False,
            URL.build(path=path, query_string=query, fragment=fragment, encoded=True),
        )
        self.link.stream_started()
        stream.task = self.link.loop.create_task(stream.serve(message))


class _RawHeaders(Sequence[tuple[bytes, bytes]]):
    """`request.raw_headers`, encoded only if a handler asks for them (the core's never do)."""

    __slots__ = ("_flat", "_pairs")

    def __init__(self, flat: list[str]) -> None:
        self._flat = flat
        self._pairs: tuple[tuple[bytes, bytes], ...] | None = None

    def _encoded(self) -> tuple[tuple[bytes, bytes], ...]:
        if self._pairs is None:
            flat = [part.encode("utf-8", "surrogateescape") for part in self._flat]
            self._pairs = tuple(zip(flat[::2], flat[1::2], strict=True))
        return self._pairs

    def __len__(self) -> int:
        return len(self._flat) // 2

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        return self._encoded()[index]

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._encoded())


class _StreamTransport:
    """What a handler reaches as `request.transport`: closing it abandons this request only."""

    __slots__ = ("_stream",)

    def __init__(self, stream: CoreStream) -> None:
        self._stream = stream

    def close(self) -> None:
        self._stream.reset()

    def abort(self) -> None:
        self._stream.reset()

    def is_closing(self) -> bool:
        return self._stream.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class CoreStream:
    """One request on a framed connection. It also stands in for aiohttp's RequestHandler as the
    request's `protocol` (the few attributes a request reads from it)."""

    ssl_context = None
    peername = ""  # as a Unix-socket peer: the client's address travels in X-Forwarded-For
    sockname = ""
    max_field_size = 8190
    max_headers = 128

    def __init__(self, connection: CoreConnection, stream_id: int) -> None:
        self.connection = connection
        self.id = stream_id
        self.flow = frames.StreamFlow(self._pause, self._resume)
        self.payload: StreamReader = EMPTY_PAYLOAD
        self.task: asyncio.Task[None] | None = None
        self.gate = frames.SendGate()
        self.closed = False  # reset by either side, or finished
        self._transport = _StreamTransport(self)

    @property
    def transport(self) -> _StreamTransport | None:
        return None if self.closed else self._transport

    # -- the request body, arriving ----------------------------------------------------------------

    def receive(self, data: bytes, end: bool) -> None:
        payload = self.payload
        if payload is EMPTY_PAYLOAD or payload.is_eof():
            return
        if data:
            payload.feed_data(data)
        if end:
            payload.feed_eof()

    def _pause(self) -> None:
        self.connection.write(frames.frame(frames.PAUSE, self.id))

    def _resume(self) -> None:
        self.connection.write(frames.frame(frames.RESUME, self.id))

    # -- the response, leaving ---------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Write one frame of body, after waiting while the gateway asked for a pause."""
        if self.closed:
            raise ConnectionResetError("the gateway abandoned this request")
        if self.gate.paused:
            await self.gate.wait()
            if self.closed:
                raise ConnectionResetError("the gateway abandoned this request")
        self.connection.write(data)
        await self.connection.drain()

    def reset(self) -> None:
        """This side gives up on the request (a handler closed its transport mid-body)."""
        if not self.closed:
            self.connection.write(frames.frame(frames.RESET, self.id))
            self.abandon("reset by the core")

    def abandon(self, why: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.flow.connected = False
        if self.payload is not EMPTY_PAYLOAD and not self.payload.is_eof():
            self.payload.set_exception(ConnectionResetError(why))
        self.gate.resume()  # a writer waiting on a pause wakes up and sees `closed`
        self.connection.streams.pop(self.id, None)

    # -- serving -------------------------------------------------------------------------------

    async def serve(self, message: RawRequestMessage) -> None:
        server = self.connection.link.server
        writer = FrameWriter(self)
        request = server.request_factory(message, self.payload, self, writer, asyncio.current_task())  # type: ignore[arg-type]
        try:
            try:
                response = await server.request_handler(request)
            except web.HTTPException as exc:
                response = exc
            except (ConnectionError, asyncio.CancelledError):
                raise
            except Exception:
                log.exception("unhandled error serving %s %s", message.method, message.path)
                response = web.Response(status=500, text="500 Internal Server Error")
            if not self.closed:
                await response.prepare(request)
                await response.write_eof()
        except ConnectionError:
            log.debug("%s %s: the gateway went away", message.method, message.path)
        except Exception:
            log.exception("sending the answer to %s %s failed", message.method, message.path)
        finally:
            finish = getattr(request, "_finish", None)  # aiohttp's own cleanup of form uploads
            if finish is not None:
                finish()
            # Whatever went wrong, the gateway must not wait for an answer that will not come:
            # an unfinished stream is reset (the gateway answers 503, or cuts its response off).
            self.reset()
            self.connection.link.stream_ended()


class FrameWriter(AbstractStreamWriter):
    """aiohttp's response writes as frames: the head (kept until the first body bytes, so a small
    answer is one frame), then DATA frames, the last one marked END."""

    def __init__(self, stream: CoreStream) -> None:
        self._stream = stream
        self._head: list[object] | None = None
        self._compress: Any = None
        self.length = None

    async def write_headers(self, status_line: str, headers: CIMultiDict[str]) -> None:
        _, status, reason = [*status_line.split(" ", 2), ""][:3]
        flat: list[str] = []
        for name, value in headers.items():
            if name.lower() not in _RESPONSE_SKIP:
                flat += (name, value)
        self._head = [int(status), reason, flat]

    def send_headers(self) -> None:
        if self._head is not None and not self._stream.closed:
            self._stream.connection.write(frames.head_frame(frames.RESPONSE, self._stream.id, self._head, b"", False))
            self._head = None

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        strategy = zlib.Z_DEFAULT_STRATEGY if strategy is None else strategy
        self._compress = zlib.compressobj(wbits=wbits, strategy=strategy)

    def enable_chunking(self) -> None:
        """The link frames bodies itself."""

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        # Not copied (as aiohttp's own writer does not): the frame is built from it at once.
        data = chunk
        if self._compress is not None:
            data = self._compress.compress(data)
        self.output_size += len(data)
        if self.on_body_write is not None:
            self.on_body_write(len(chunk), self.output_size)
        if data or self._head is not None:
            await self._send(data, end=False)

    async def write_eof(self, chunk: bytes = b"") -> None:
        data = bytes(chunk)
        if self._compress is not None:
            data = self._compress.compress(data) + self._compress.flush()
        self.output_size += len(data)
        await self._send(data, end=True)

    async def drain(self) -> None:
        await self._stream.connection.drain()

    async def _send(self, data: bytes, end: bool) -> None:
        stream = self._stream
        head, self._head = self._head, None
        rest = len(data) > frames.CHUNK
        if rest:
            data = memoryview(data)  # slices of a view are not copies
        first = data[: frames.CHUNK] if rest else data
        if head is not None:
            await stream.send(frames.head_frame(frames.RESPONSE, stream.id, head, first, end and not rest))
        elif first or end:
            kind = frames.DATA | frames.END if end and not rest else frames.DATA
            await stream.send(frames.frame(kind, stream.id, first))
        for offset in range(frames.CHUNK, len(data), frames.CHUNK):
            last = end and offset + frames.CHUNK >= len(data)
            piece = data[offset : offset + frames.CHUNK]
            await stream.send(frames.frame(frames.DATA | frames.END if last else frames.DATA, stream.id, piece))
        if end:
            stream.closed = True  # finished: later frames for this id are dropped
            stream.flow.connected = False
            stream.connection.streams.pop(stream.id, None)
