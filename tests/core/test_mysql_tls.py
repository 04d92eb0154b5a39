"""MLFLOW_MYSQL_SSL_* in-process, against a real TLS-only MariaDB (tests/support/mariadb_tls.py).

The server's certificate names db.internal.test, not the 127.0.0.1 we dial, so every accepted
connection here also shows the host name is not checked while the chain is.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway import config as configuration
from tests.support.mariadb_tls import TLS_PASSWORD, TLSMariaDB, mariadb_tls, plain_mariadb  # noqa: F401
from tracking_core.store import schema
from tracking_core.store.database import create_engine
from tracking_core.store.mysql_tls import tls_context

pytestmark = pytest.mark.mariadb


def _config(uri: str, **env: str) -> configuration.Config:
    return configuration.load({"backend_store_uri": uri}, env=env)


def test_context_verifies_the_chain_not_the_host_name(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    import trustme

    trustme.CA().cert_pem.write_to_path(str(ca))
    ctx = tls_context(_config("mysql://u@h/db", MLFLOW_MYSQL_SSL_CA=str(ca)))
    assert ctx is not None
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is False
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert tls_context(_config("mysql://u@h/db")) is None


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"MLFLOW_MYSQL_SSL_CA": "/nonexistent/ca.pem"}, "mysql_ssl_ca names no file"),
        ({"MLFLOW_MYSQL_SSL_KEY": __file__}, "mysql_ssl_key (from MLFLOW_MYSQL_SSL_KEY) needs mysql_ssl_cert"),
    ],
    ids=["missing CA file", "key without cert"],
)
def test_config_problems(env: dict[str, str], problem: str) -> None:
    with pytest.raises(configuration.ConfigError) as raised:
        _config("mysql://u@h/db", **env)
    assert any(problem in p for p in raised.value.problems), raised.value.problems
    _config("sqlite:///unused.db", **env)  # a stale MLFLOW_MYSQL_SSL_* does not concern other databases


async def _session_status(config: configuration.Config, uri: str) -> dict[str, str]:
    engine = create_engine(config, uri)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text("SHOW SESSION STATUS LIKE 'Ssl_%'"))
            return {name: value for name, value in rows}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("user", ["tls_user", "x509_user"], ids=["REQUIRE SSL", "REQUIRE X509"])
async def test_connection_is_tls(mariadb_tls: TLSMariaDB, user: str) -> None:  # noqa: F811
    db = mariadb_tls.new_database()
    env = {"MLFLOW_MYSQL_SSL_CA": mariadb_tls.ca}
    if user == "x509_user":
        env |= {"MLFLOW_MYSQL_SSL_CERT": mariadb_tls.client_cert, "MLFLOW_MYSQL_SSL_KEY": mariadb_tls.client_key}
    uri = mariadb_tls.uri(user, db, TLS_PASSWORD if user == "tls_user" else None)
    status = await _session_status(_config(uri, **env), uri)
    assert status["Ssl_cipher"]
    assert status["Ssl_version"] in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize(
    ("user", "ca", "expected"),
    [
        ("tls_user", None, ["Access denied", "set MLFLOW_MYSQL_SSL_CA"]),
        ("tls_user", "other_ca", ["certificate verify failed", "self-signed certificate in certificate chain",
                                    "is the server's certificate signed by the CA in"]),
        ("x509_user", "ca", ["Access denied", "set MLFLOW_MYSQL_SSL_CERT and MLFLOW_MYSQL_SSL_KEY"]),
    ],
    ids=["no TLS settings", "CA that did not sign the server cert", "X509 user without client cert"],
)
async def test_refusals_say_why(
    mariadb_tls: TLSMariaDB, user: str, ca: str | None, expected: list[str]  # noqa: F811
) -> None:
    db = mariadb_tls.new_database()
    env = {"MLFLOW_MYSQL_SSL_CA": getattr(mariadb_tls, ca)} if ca else {}
    uri = mariadb_tls.uri(user, db, TLS_PASSWORD if user == "tls_user" else None)
    with pytest.raises(schema.SchemaError) as raised:
        await schema.prepare(_config(uri, **env))
    message = str(raised.value)
    for text in expected:
        assert text in message
    assert TLS_PASSWORD not in message


async def test_unreadable_ca_pem_is_named(mariadb_tls: TLSMariaDB, tmp_path: Path) -> None:  # noqa: F811
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    uri = mariadb_tls.uri("tls_user", "unused", TLS_PASSWORD)
    with pytest.raises(schema.SchemaError, match=f"cannot use {bogus} \\(MLFLOW_MYSQL_SSL_CA\\) as a CA file"):
        await schema.prepare(_config(uri, MLFLOW_MYSQL_SSL_CA=str(bogus)))


async def test_server_without_tls_is_refused_before_authentication(mariadb_tls: TLSMariaDB) -> None:  # noqa: F811
    # aiomysql alone would carry on in plain text here; PyMySQL (mlflow server) refuses.
    with plain_mariadb() as plain:
        uri = f"mysql://plain_user@127.0.0.1:{plain.port}/plain"
        with pytest.raises(schema.SchemaError, match=r"TLS is required .* but the server does not offer it"):
            await schema.prepare(_config(uri, MLFLOW_MYSQL_SSL_CA=mariadb_tls.ca))
        # Without the setting the same server is fine: the refusal is about TLS, nothing else.
        await schema.prepare(_config(uri))
