"""The public port's TLS: modern defaults, optional client certificates, reload on SIGHUP.

Reload without dropping anything: the listening socket keeps one SSLContext for its lifetime,
whose SNI callback (OpenSSL calls it on every ClientHello, with or without SNI) moves each new
handshake onto the CURRENT context. SIGHUP builds a fresh context from the files and makes it
current; established connections keep the context they shook hands with, new ones get the new
certificate. A reload that fails (a half-written file) keeps the old context and says so.
"""

from __future__ import annotations

import logging
import ssl

from gateway.config import Config
from gateway.supervisor import CoreStartupError

log = logging.getLogger("trackgate.tls")

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
