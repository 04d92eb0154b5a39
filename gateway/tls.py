"""The public port's TLS: modern defaults, optional client certificates, reload on SIGHUP.

Reload without dropping anything: the listening socket keeps one SSLContext for its lifetime,
whose SNI callback (OpenSSL calls it on every ClientHello, with or without SNI) moves each new
handshake onto the CURRENT context. SIGHUP builds a fresh context from the files and makes it
current; established connections keep the context they shook hands with, new ones get the new
certificate. A reload that fails (a half-written file) keeps the old context and says so.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.config import Config
from gateway.supervisor import CoreStartupError

log = logging.getLogger("trackgate.tls")

HANDSHAKE_TIMEOUT = 30.0
FAILURE_REPORT_INTERVAL = 300.0  # per client address
MAX_REPORTED_PEERS = 10_000

_VERIFY = {"off": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class TlsError(CoreStartupError):
    """The certificate, key or CA files cannot be used (message names files, never contents)."""


def build_context(config: Config) -> ssl.SSLContext:
    assert config.tls_cert is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    password = config.tls_key_password.reveal() if config.tls_key_password else None
    try:
        ctx.load_cert_chain(config.tls_cert, config.tls_key, password=password)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(
            f"cannot load the TLS certificate {config.tls_cert} / key {config.tls_key or '(same file)'}: "
            f"{getattr(exc, 'reason', None) or type(exc).__name__}"
        ) from None
    mode = config.effective_client_cert_mode
    ctx.verify_mode = _VERIFY[mode]
    if mode != "off":
        try:
            ctx.load_verify_locations(cafile=config.tls_client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(
                f"cannot load the client CA {config.tls_client_ca}: {type(exc).__name__}"
            ) from None
    return ctx


class TlsContext:
    """`listening` goes to the site once; `reload()` swaps what new handshakes use."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self.listening = build_context(config)
        self.listening.sni_callback = self._select
        # Until the first reload the listening context is the current one: handshakes stay on it.
        self.current = self.listening
        self.reloads = 0

    def _select(self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        if connection.context is not self.current:
            connection.context = self.current

    def reload(self) -> bool:
        try:
            self.current = build_context(self._config)
        except TlsError as exc:
            log.error("TLS reload failed, still serving the previous certificate: %s", exc)
            return False
        self.reloads += 1
        log.info("TLS certificate reloaded from %s (new connections use it)", self._config.tls_cert)
        return True


class HandshakeFailures:
    """TLS handshake failures (a client certificate from another CA, plain HTTP on the TLS port,
    a scanner) logged at info once per client address and interval, the rest counted: enough to
    diagnose a client, never a line per connection."""

    def __init__(self) -> None:
        self._peers: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def note(self, peer: str, exc: BaseException) -> None:
        now = time.monotonic()
        last, repeats = self._peers.get(peer, (float("-inf"), 0))
        if now - last < FAILURE_REPORT_INTERVAL:
            self._peers[peer] = (last, repeats + 1)
            return
        reason = getattr(exc, "reason", None) or type(exc).__name__
        more = f" ({repeats} more since the last report)" if repeats else ""
        log.info("TLS handshake with %s failed: %s%s", peer, reason, more)
        self._peers[peer] = (now, 0)
        self._peers.move_to_end(peer)
        while len(self._peers) > MAX_REPORTED_PEERS:
            self._peers.popitem(last=False)


class TlsAcceptor(asyncio.Protocol):
    """The first protocol of a TLS connection: it runs the handshake itself (loop.start_tls), so a
    failure reaches us (asyncio keeps a server's failed handshakes to its debug log), then hands
    the encrypted transport to the HTTP handler, with any request bytes that came with the
    handshake's last flight."""

    def __init__(self, context: ssl.SSLContext, make_handler: Callable[[], asyncio.Protocol],
                 failures: HandshakeFailures) -> None:
        self._context = context
        self._make_handler = make_handler
        self._failures = failures
        self._early: list[bytes] = []
        self._handler: asyncio.Protocol | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The task's first step calls start_tls before the loop reads from the socket.
        self._task = asyncio.ensure_future(self._handshake(transport))  # type: ignore[arg-type]

    async def _handshake(self, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(transport, self, self._context, server_side=True,
                                       ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
        except (OSError, TimeoutError, ConnectionError) as exc:  # ssl.SSLError is an OSError
            self._failures.note(address, exc)
            transport.abort()
            return
        if tls is None or tls.is_closing():
            return
        handler = self._handler = self._make_handler()
        tls.set_protocol(handler)
        handler.connection_made(tls)
        for data in self._early:
            handler.data_received(data)  # type: ignore[attr-defined]
        self._early.clear()

    def data_received(self, data: bytes) -> None:
        self._early.append(data)  # decrypted before the handler took over

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
