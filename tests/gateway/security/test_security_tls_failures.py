"""Finding 13 of issue 13 (TLS part): failed handshakes (a client certificate from another CA,
plain HTTP on the TLS port) are logged at info, once per client address and interval."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.auth.test_tls import Certs, get


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return Certs(tmp_path)


async def test_failed_handshakes_are_logged_once_per_peer(gateway_factory: Callable[..., Awaitable[Any]],
                                                           certs: Certs, caplog: pytest.LogCaptureFixture) -> None:
    gw = await gateway_factory(auth="mtls", **certs.settings("required"))
    caplog.set_level(logging.INFO, logger="trackgate.tls")
    for _ in range(3):  # a certificate from another CA, three times
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await get(gw.port, certs.client_context(certs.stranger))
    await asyncio.sleep(0.2)
    lines = [r.getMessage() for r in caplog.records if r.name == "trackgate.tls"]
    assert len(lines) == 1 and lines[0].startswith("TLS handshake with 127.0.0.1 failed:"), lines
    assert "CERTIFICATE" in lines[0].upper()
    # Plain HTTP from another address is its own first report.
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port, local_addr=("127.0.0.2", 0))
    writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await asyncio.sleep(0.2)
    lines = [r.getMessage() for r in caplog.records if r.name == "trackgate.tls"]
    assert len(lines) == 2 and lines[1].startswith("TLS handshake with 127.0.0.2 failed:"), lines
    # The right certificate still works, on the same port.
    status, _ = await get(gw.port, certs.client_context(certs.client))
    assert status == 200
