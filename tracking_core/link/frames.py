"""The framed link between the gateway and the core workers: the wire format both sides share.

After the gateway's PREFACE, everything on the connection is a frame:

    type:u8  stream:u32  length:u32  payload[length]

The high bit of `type` is END (the sender's body on this stream is complete). Many requests are
in flight on one connection at once, each a stream (an id the gateway picks). A request is one
REQUEST frame (its head, optionally followed by the start of the body, inline), then DATA
frames; the answer is one RESPONSE frame, then DATA frames. PAUSE / RESUME ask the other side to
stop / restart sending DATA on one stream (per-stream back-pressure: a slow reader never stalls
the other streams), RESET abandons a stream. HELLO is the core's answer to the preface (its pid);
GOAWAY tells the gateway to send no new requests on this connection (the worker is draining).

Heads are orjson arrays: a request `[method, target, [name, value, name, value, ...]]`, a
response `[status, reason, [name, value, ...]]`. Header names and values are those of HTTP, so
the core's aiohttp handlers see the same request the HTTP hop gave them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable

import orjson

# Sent first by the gateway. An HTTP/1.1 server reads it as a malformed request line and answers
# 400, which is how the gateway recognises a core that speaks only HTTP.
PREFACE = b"PRI * TRACKGATE-LINK/1\r\n\r\n"

HEADER = struct.Struct("!BII")
HEADER_SIZE = HEADER.size
HEAD_LENGTH = struct.Struct("!I")

REQUEST = 1
RESPONSE = 2
DATA = 3
RESET = 4
PAUSE = 5
RESUME = 6
HELLO = 7
GOAWAY = 8
END = 0x80
_KINDS = frozenset({REQUEST, RESPONSE, DATA, RESET, PAUSE, RESUME, HELLO, GOAWAY})

MAX_FRAME = 16 * 1024 * 1024  # far above any head or chunk either side sends
CHUNK = 1024 * 1024  # body bytes per DATA frame: big bodies cost a frame (and a send) per MiB
WINDOW = 1024 * 1024  # a stream's receive buffer before it asks for a PAUSE
_FILL_IN_PLACE = 64 * 1024  # a payload this big that spans reads is gathered in its own buffer

_dumps = orjson.dumps
_loads = orjson.loads


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame; the connection cannot continue."""


def frame(kind: int, stream: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, stream, len(payload)) + payload


# The link's socket buffers: a 1 MiB body frame should leave in one send, not in ~208 KiB pieces
# (Linux's default for a Unix socket), each a wake-up of the peer.
SOCKET_BUFFER = 4 * 1024 * 1024


def widen_buffers(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        with contextlib.suppress(OSError):  # a smaller buffer is slower, not wrong
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)


def head_frame(kind: int, stream: int, head: list[object], body: bytes, end: bool) -> bytes:
    encoded = _dumps(head)
    return b"".join(
        (
            HEADER.pack(kind | END if end else kind, stream, HEAD_LENGTH.size + len(encoded) + len(body)),
            HEAD_LENGTH.pack(len(encoded)),
            encoded,
            body,
        )
    )


def split_head(payload: bytes) -> tuple[list[object], bytes]:
    """A REQUEST / RESPONSE payload as (head, inline body)."""
    if len(payload) < HEAD_LENGTH.size:
        raise ProtocolError("head frame too short")
    (size,) = HEAD_LENGTH.unpack_from(payload)
    end = HEAD_LENGTH.size + size
    if end > len(payload):
        raise ProtocolError("head longer than its frame")
    try:
        head = _loads(payload[HEAD_LENGTH.size : end])
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"head is not JSON: {exc}") from None
    if not isinstance(head, list) or len(head) != 3 or not isinstance(head[2], list) or len(head[2]) % 2:
        raise ProtocolError("head is not [first, second, [name, value, ...]]")
    return head, payload[end:]


def header_pairs(flat: list[object]) -> list[tuple[str, str]]:
    pairs = list(zip(flat[::2], flat[1::2], strict=True))
    for name, value in pairs:
        if type(name) is not str or type(value) is not str:
            raise ProtocolError("header names and values must be strings")
    return pairs  # type: ignore[return-value]


class Decoder:
    """Splits received bytes into frames; calls `on_frame(kind, end, stream, payload)` for each.

    A payload that arrives whole in one read is a slice of it. A big one that spans reads (a
    1 MiB DATA frame comes in ~256 KiB reads) is filled in place into a buffer of its own size,
    handed over as a bytearray once complete: one copy per byte, where gathering the reads in a
    growing buffer and slicing the frame out of it cost three.
    """

    __slots__ = ("_buffer", "_filled", "_frame", "_on_frame", "_pending")

    def __init__(self, on_frame: Callable[[int, bool, int, bytes], None]) -> None:
        self._buffer = bytearray()
        self._on_frame = on_frame
        self._pending: bytearray | None = None  # the payload being filled in place
        self._filled = 0
        self._frame = (0, 0)  # its kind (with END) and stream

    def feed(self, data: bytes) -> None:
        offset = 0
        if self._pending is not None:
            offset = self._fill(data)
            if self._pending is not None:
                return
        buffer = self._buffer
        if buffer:
            buffer += data
            source: bytes | bytearray = buffer
        else:
            source = data  # the common case: whole frames sliced straight out of what was received
        size = len(source)
        try:
            while size - offset >= HEADER_SIZE:
                kind, stream, length = HEADER.unpack_from(source, offset)
                if length > MAX_FRAME:
                    raise ProtocolError(f"frame of {length} bytes exceeds {MAX_FRAME}")
                if kind & ~END not in _KINDS:
                    raise ProtocolError(f"unknown frame type {kind & ~END}")
                start = offset + HEADER_SIZE
                if size - start < length:
                    if length >= _FILL_IN_PLACE:
                        self._pending = bytearray(length)
                        self._filled = size - start
                        self._frame = (kind, stream)
                        with memoryview(source) as view:
                            self._pending[: self._filled] = view[start:size]
                        offset = size
                    break
                offset = start + length
                if source is buffer:
                    with memoryview(buffer) as view:  # one copy, not a bytearray slice then bytes()
                        payload = bytes(view[start:offset])
                else:
                    payload = source[start:offset]  # type: ignore[assignment]
                self._on_frame(kind & ~END, bool(kind & END), stream, payload)
        finally:
            if source is buffer:
                del buffer[:offset]
            elif offset < size:
                buffer += data[offset:]

    def _fill(self, data: bytes) -> int:
        """Copy the start of `data` into the pending payload; hand it over once complete.
        Returns how much of `data` was used."""
        pending = self._pending
        assert pending is not None
        used = min(len(pending) - self._filled, len(data))
        with memoryview(data) as view:
            pending[self._filled : self._filled + used] = view[:used]
        self._filled += used
        if self._filled == len(pending):
            self._pending = None
            kind, stream = self._frame
            self._on_frame(kind & ~END, bool(kind & END), stream, pending)  # type: ignore[arg-type]
        return used


class StreamFlow:
    """What aiohttp's StreamReader expects of its protocol, for one stream of a link: when the
    reader holds too much, `pause` asks the sender to stop this stream; when it drained, `resume`."""

    __slots__ = ("_pause", "_reading_paused", "_resume", "connected")

    def __init__(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        self._reading_paused = False
        self.connected = True
        self._pause = pause
        self._resume = resume

    def pause_reading(self) -> None:
        if not self._reading_paused and self.connected:
            self._reading_paused = True
            self._pause()

    def resume_reading(self, resume_parser: bool = True) -> None:
        if self._reading_paused:
            self._reading_paused = False
            if self.connected:
                self._resume()


class SendGate:
    """The sending half of a stream's back-pressure: shut by the peer's PAUSE, opened again by
    its RESUME (or when the stream ends, so that a waiting sender wakes up and sees it)."""

    __slots__ = ("_waiter", "paused")

    def __init__(self) -> None:
        self.paused = False
        self._waiter: asyncio.Future[None] | None = None

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        while self.paused:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
