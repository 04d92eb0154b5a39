"""A throwaway MariaDB that speaks only TLS, on a free 127.0.0.1 port, for the MLFLOW_MYSQL_SSL_* tests.

One instance per test session (`mariadb_tls` fixture): `mariadb-install-db` into a temporary datadir,
then `mariadbd` with certificates from a `trustme` CA and `require_secure_transport=ON`, so a plain
TCP connection is refused by the server itself. Two users besides root:

- `tls_user` (password `TLS_PASSWORD`) must use TLS (REQUIRE SSL);
- `x509_user` (no password) must present a client certificate signed by the CA (REQUIRE X509).

The server certificate names `db.internal.test`, not 127.0.0.1, as Cloud SQL's name the instance
and not the address clients connect to. Root administers the instance over its Unix socket, which
`require_secure_transport` leaves alone. `plain_mariadb()` starts one without TLS at all, for the
test that a client asking for TLS refuses such a server. The process is stopped by its pid and the
datadir removed at the end.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
import trustme

from tests.services import free_port, missing

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "mariadb-install-db"
SERVER_NAME = "db.internal.test"
TLS_PASSWORD = "tls-user-s3cret-pw"
CLIENT_SUBJECT = "trackgate-client"


@dataclass
class MariaDBInstance:
    port: int
    datadir: Path
    process: subprocess.Popen[bytes]

    @property
    def socket(self) -> str:
        return str(self.datadir / "mariadb.sock")

    def admin(self) -> pymysql.Connection:  # type: ignore[type-arg]
        """Root over the Unix socket: no TLS needed there."""
        return pymysql.connect(unix_socket=self.socket, user="root", autocommit=True)

    def sql(self, *statements: str) -> list[tuple[object, ...]]:
        """Run statements as root; the rows of the last one."""
        conn = self.admin()
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def log(self) -> str:
        path = self.datadir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class TLSMariaDB(MariaDBInstance):
    certs: Path  # ca.pem, other-ca.pem, client.pem, client.key

    @property
    def ca(self) -> str:
        """The CA that signed the server's (and the client's) certificate."""
        return str(self.certs / "ca.pem")

    @property
    def other_ca(self) -> str:
        """A CA that signed nothing this server presents."""
        return str(self.certs / "other-ca.pem")

    @property
    def client_cert(self) -> str:
        return str(self.certs / "client.pem")

    @property
    def client_key(self) -> str:
        return str(self.certs / "client.key")

    def new_database(self) -> str:
        """A new, empty database both users may use; its name."""
        name = f"tg_tls_{secrets.token_hex(4)}"
        self.sql(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            f"GRANT ALL ON `{name}`.* TO 'tls_user'@'127.0.0.1'",
            f"GRANT ALL ON `{name}`.* TO 'x509_user'@'127.0.0.1'",
        )
        return name

    def uri(self, user: str, database: str, password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"mysql://{auth}@127.0.0.1:{self.port}/{database}?charset=utf8mb4"


def _write_certs(certs: Path) -> None:
    certs.mkdir(parents=True)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(certs / "ca.pem"))
    server = ca.issue_cert(SERVER_NAME)
    server.private_key_pem.write_to_path(str(certs / "server.key"))
    server.cert_chain_pems[0].write_to_path(str(certs / "server.pem"))
    client = ca.issue_cert(CLIENT_SUBJECT, common_name=CLIENT_SUBJECT)
    client.private_key_pem.write_to_path(str(certs / "client.key"))
    client.cert_chain_pems[0].write_to_path(str(certs / "client.pem"))
    trustme.CA().cert_pem.write_to_path(str(certs / "other-ca.pem"))


def _start(root: Path, server_args: list[str]) -> tuple[int, Path, subprocess.Popen[bytes]]:
    """install-db into root/data, start mariadbd, wait until root can connect over the socket."""
    if shutil.which(MARIADBD) is None or shutil.which(INSTALL_DB) is None:
        missing(f"{MARIADBD} and {INSTALL_DB} (to start a throwaway MariaDB)")
    datadir = root / "data"
    installed = subprocess.run(
        [INSTALL_DB, "--no-defaults", f"--datadir={datadir}", "--user=root",
         "--auth-root-authentication-method=normal", "--skip-test-db"],
        capture_output=True, text=True,
    )
    if installed.returncode != 0:
        missing(f"a throwaway MariaDB ({INSTALL_DB} failed: {installed.stderr.strip()[-500:]})")
    port = free_port()
    process = subprocess.Popen(
        [MARIADBD, "--no-defaults", f"--datadir={datadir}", f"--socket={datadir / 'mariadb.sock'}",
         f"--pid-file={datadir / 'mariadbd.pid'}", f"--log-error={datadir / 'error.log'}",
         f"--port={port}", "--bind-address=127.0.0.1", "--user=root", "--skip-name-resolve",
         "--innodb-buffer-pool-size=16M", *server_args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            pymysql.connect(unix_socket=str(datadir / "mariadb.sock"), user="root").close()
            return port, datadir, process
        except pymysql.err.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process)
                log = (datadir / "error.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"throwaway mariadbd did not start (exit {process.returncode}):\n{log}")
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM to this pid: mariadbd shuts down cleanly
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_tls_mariadb() -> Iterator[TLSMariaDB]:
    root = Path(tempfile.mkdtemp(prefix="trackgate-mariadb-tls-"))
    try:
        certs = root / "certs"
        _write_certs(certs)
        port, datadir, process = _start(root, [
            f"--ssl-ca={certs / 'ca.pem'}", f"--ssl-cert={certs / 'server.pem'}",
            f"--ssl-key={certs / 'server.key'}", "--require-secure-transport=ON",
        ])
        db = TLSMariaDB(port, datadir, process, certs)
        try:
            db.sql(
                f"CREATE USER 'tls_user'@'127.0.0.1' IDENTIFIED BY '{TLS_PASSWORD}' REQUIRE SSL",
                "CREATE USER 'x509_user'@'127.0.0.1' REQUIRE X509",
            )
            yield db
        finally:
            _stop(process)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def plain_mariadb() -> Iterator[MariaDBInstance]:
    """A MariaDB with TLS switched off, and a passwordless `plain_user` with a database `plain`."""
    root = Path(tempfile.mkdtemp(prefix="trackgate-mariadb-plain-"))
    try:
        port, datadir, process = _start(root, ["--skip-ssl"])
        db = MariaDBInstance(port, datadir, process)
        try:
            db.sql(
                "CREATE DATABASE plain",
                "CREATE USER 'plain_user'@'127.0.0.1'",
                "GRANT ALL ON plain.* TO 'plain_user'@'127.0.0.1'",
            )
            yield db
        finally:
            _stop(process)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb_tls() -> Iterator[TLSMariaDB]:
    """The session's TLS-only MariaDB (started on first use)."""
    with running_tls_mariadb() as db:
        yield db
