"""TLS and client certificates on a real gateway (stand-in core), certificates from trustme CAs;
certificate reload (in process, and by SIGHUP to `trackgate server`) without dropping connections."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509

from gateway import keys
from tests.server_process import trackgate_server


class Certs:
    def __init__(self, d: Path) -> None:
        self.dir = d
        self.ca, self.other_ca = trustme.CA(), trustme.CA()
        self.ca.cert_pem.write_to_path(d / "ca.pem")
        self.write_server_cert("127.0.0.1")
        self.client = self.ca.issue_cert("svc.example.test", "svc@example.test", common_name="svc-trainer")
        self.stranger = self.other_ca.issue_cert("svc.example.test", common_name="svc-trainer")

    def write_server_cert(self, *names: str) -> x509.Certificate:
        cert = self.ca.issue_cert(*names)
        cert.cert_chain_pems[0].write_to_path(self.dir / "server.pem")
        cert.private_key_pem.write_to_path(self.dir / "server-key.pem")
        return x509.load_pem_x509_certificate(cert.cert_chain_pems[0].bytes())

    def settings(self, mode: str, **extra: Any) -> dict[str, Any]:
        return {"tls_cert": str(self.dir / "server.pem"), "tls_key": str(self.dir / "server-key.pem"),
                "tls_client_ca": str(self.dir / "ca.pem"), "client_cert_mode": mode, **extra}

    def client_context(self, cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.dir / "ca.pem"))
        if cert is not None:
            cert.configure_cert(ctx)
        return ctx


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return Certs(tmp_path)


async def get(port: int, ctx: ssl.SSLContext, path: str = "/echo") -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    if not data:
        # TLS 1.3: the client's side of the handshake ends before the server has checked the
        # client certificate; a refusal then shows as the connection closing unanswered.
        raise ConnectionResetError("closed without an answer")
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body.startswith(b"{") else {}


def subject_at_core(body: dict[str, Any]) -> str | None:
    return next((v for k, v in body["headers"] if k.lower() == "x-trackgate-subject"), None)


Factory = Callable[..., Awaitable[Any]]


@pytest.mark.parametrize(("identity", "expected"), [("cn", "svc-trainer"), ("san:dns", "svc.example.test"),
                                                    ("san:email,cn", "svc@example.test")])
async def test_client_certificate_identity(gateway_factory: Factory, certs: Certs, identity: str,
                                           expected: str) -> None:
    gw = await gateway_factory(auth="mtls", **certs.settings("optional", client_cert_identity=identity))
    status, body = await get(gw.port, certs.client_context(certs.client))
    assert status == 200 and subject_at_core(body) == expected
    assert ("X-Trackgate-Auth-Method", "mtls") in [tuple(h) for h in body["headers"]]


async def test_optional_mode_without_certificate_is_401(gateway_factory: Factory, certs: Certs) -> None:
    gw = await gateway_factory(auth="mtls", **certs.settings("optional"))
    status, body = await get(gw.port, certs.client_context())
    assert status == 401 and body["error_code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("mode", ["optional", "required"])
async def test_certificate_from_another_ca_fails_the_handshake(gateway_factory: Factory, certs: Certs,
                                                               mode: str) -> None:
    gw = await gateway_factory(auth="mtls", **certs.settings(mode))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await get(gw.port, certs.client_context(certs.stranger))


async def test_required_mode_refuses_a_client_without_certificate(gateway_factory: Factory, certs: Certs) -> None:
    gw = await gateway_factory(auth="mtls", **certs.settings("required"))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await get(gw.port, certs.client_context())


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
async def test_tls_older_than_1_2_is_refused(gateway_factory: Factory, certs: Certs) -> None:
    gw = await gateway_factory(**certs.settings("off"))
    ctx = certs.client_context()
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except ValueError:
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await get(gw.port, ctx)
    assert (await get(gw.port, certs.client_context()))[0] == 200


def served_serial(port: int, certs: Certs) -> int:
    ctx = certs.client_context()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, ctx.wrap_socket(
        raw, server_hostname="127.0.0.1"
    ) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_reload_serves_the_new_certificate_and_keeps_open_connections(gateway_factory: Factory,
                                                                            certs: Certs) -> None:
    gw = await gateway_factory(**certs.settings("off"))
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port, ssl=certs.client_context(),
                                                   server_hostname="127.0.0.1")
    request = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    writer.write(request)
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    new = certs.write_server_cert("127.0.0.1", "localhost")
    assert gw.app[keys.tls].reload()
    assert await asyncio.to_thread(served_serial, gw.port, certs) == new.serial_number
    # The connection made before the reload still works (keep-alive, old certificate).
    await reader.readuntil(b"}")
    writer.write(request)
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_failed_reload_keeps_serving(gateway_factory: Factory, certs: Certs) -> None:
    gw = await gateway_factory(**certs.settings("off"))
    (certs.dir / "server.pem").write_text("not a certificate")
    assert gw.app[keys.tls].reload() is False
    assert (await get(gw.port, certs.client_context()))[0] == 200


@pytest.mark.slow
def test_sighup_reloads_trackgate_server(tmp_path: Path) -> None:
    certs = Certs(tmp_path)
    args = ["--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server-key.pem")]
    with trackgate_server(tmp_path, *args, wait=False) as server:
        port = int(server.url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 60
        while True:
            try:
                before = served_serial(port, certs)
                break
            except OSError:
                assert time.monotonic() < deadline and server.process.poll() is None, server.log()
                time.sleep(0.1)
        new = certs.write_server_cert("127.0.0.1")
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while (now := served_serial(port, certs)) == before:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        assert now == new.serial_number and server.process.poll() is None
        assert "TLS certificate reloaded" in server.log()
