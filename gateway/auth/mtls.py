"""Client certificates (`--auth mtls`, MLFLOW_TRACKING_CLIENT_CERT_PATH): identity from the cert.

The TLS handshake has already verified the chain against `tls_client_ca` (a certificate from
another CA never gets this far: the handshake fails). Here the identity is read from the first
of `client_cert_identity`'s sources the certificate has: its subject CN, or a SAN (DNS name,
email, URI). No certificate: not my kind (other methods may try, in `optional` mode).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway import keys
from gateway.auth.base import AuthenticationFailed, Consumed, Identity, Method

_SAN_TYPES = {"san:dns": "DNS", "san:email": "email", "san:uri": "URI"}


def identity_from(cert: dict[str, Any], sources: tuple[str, ...]) -> str | None:
    for source in sources:
        if source == "cn":
            for rdn in cert.get("subject", ()):
                for name, value in rdn:
                    if name == "commonName" and value:
                        return str(value)
        elif source in _SAN_TYPES:
            for kind, value in cert.get("subjectAltName", ()):
                if kind == _SAN_TYPES[source] and value:
                    return str(value)
    return None


class MtlsAuthenticator:
    name = "mtls"
    consumed = Consumed()  # a certificate is not forwarded anyway

    def __init__(self, sources: tuple[str, ...]) -> None:
        self._sources = sources

    def challenge(self) -> str | None:
        return None  # no HTTP challenge: the certificate is asked for in the handshake

    async def authenticate(self, request: web.Request) -> Identity | None:
        transport = request.transport
        cert = transport.get_extra_info("peercert") if transport is not None else None
        if not cert:
            return None
        subject = identity_from(cert, self._sources)
        if subject is None:
            raise AuthenticationFailed(
                f"The client certificate has no {' or '.join(self._sources)} to identify it by."
            )
        email = next((v for k, v in cert.get("subjectAltName", ()) if k == "email"), None)
        return Identity(subject=subject, method=self.name, email=email)


@contextlib.asynccontextmanager
async def open_mtls(app: web.Application) -> AsyncIterator[MtlsAuthenticator]:
    yield MtlsAuthenticator(app[keys.config].client_cert_identity)


METHOD = Method(name="mtls", open=open_mtls)
