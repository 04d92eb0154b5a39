"""pyftpdlib's FTP server (`python -m pyftpdlib`) on loopback, with one user and write access,
optionally with explicit FTPS (AUTH TLS) from a throwaway self-signed certificate."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.artifacts.daemons import daemon
from tests.services import free_port, missing

USER = "tg"
PASSWORD = "ftp-secret"


@dataclass
class FtpServer:
    port: int
    root: Path  # the directory the server shares, as "/"
    tls: bool = False
    ca_file: str | None = None

    def uri(self, path: str) -> str:
        scheme = "ftps" if self.tls else "ftp"
        return f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{path.strip('/')}"

    @property
    def env(self) -> dict[str, str]:
        return {"SSL_CERT_FILE": self.ca_file} if self.ca_file else {}


@contextlib.contextmanager
def pyftpdlib_server(tls: bool = False) -> Iterator[FtpServer]:
    try:
        import pyftpdlib  # noqa: F401

        if tls:
            import OpenSSL  # noqa: F401 - pyftpdlib's TLS handler needs pyOpenSSL
    except ImportError as exc:
        missing(f"pyftpdlib ({exc})")
    with tempfile.TemporaryDirectory(prefix="tg-ftp-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        port = free_port()
        argv = [sys.executable, "-m", "pyftpdlib", "-i", "127.0.0.1", "-p", str(port),
                "-u", USER, "-P", PASSWORD, "-d", str(root), "-w"]  # fmt: skip
        ca_file = None
        if tls:
            import trustme

            ca = trustme.CA()
            ca_file = str(Path(tmp) / "ca.pem")
            ca.cert_pem.write_to_path(ca_file)
            server_pem = str(Path(tmp) / "server.pem")
            ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(server_pem)
            argv += ["--tls", "--certfile", server_pem, "--keyfile", server_pem]
        with daemon(argv, port, Path(tmp) / "ftpd.log"):
            yield FtpServer(port, root, tls, ca_file)
