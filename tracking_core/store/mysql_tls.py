"""TLS to MySQL and MariaDB, from MLflow's MLFLOW_MYSQL_SSL_CA / _CERT / _KEY.

MLflow hands these to PyMySQL as `ssl_ca`, `ssl_cert` and `ssl_key`. Setting any of them makes
TLS mandatory: a server that does not offer it is refused. What PyMySQL then checks is weaker than
its parameter names suggest: without `ssl_verify_cert` it verifies neither the certificate chain nor
the host name, so a wrong CA file goes unnoticed. trackgate verifies the chain (against the CA file,
or the system's trust store when only a client certificate is given) but, like MLflow, not the host
name: managed servers present certificates naming the instance rather than the address clients
dial (Cloud SQL's name `project:instance`), and those deployments work with `mlflow server`.

aiomysql, unlike PyMySQL, carries on in plain text when the server's greeting lacks the SSL
capability (and would answer an auth switch to `mysql_clear_password` with the password itself),
so the connection class here refuses that before sending anything.
"""

from __future__ import annotations

import ssl
from typing import Any

import aiomysql
import pymysql
from pymysql.constants import CLIENT, CR

from tracking_core.settings import CoreSettings

_ENV = {"mysql_ssl_ca": "MLFLOW_MYSQL_SSL_CA", "mysql_ssl_cert": "MLFLOW_MYSQL_SSL_CERT",
        "mysql_ssl_key": "MLFLOW_MYSQL_SSL_KEY"}


class MySQLTLSError(ValueError):
    """A TLS setting that cannot be used (unreadable file, not PEM, key does not match)."""


def _origin(config: CoreSettings, name: str) -> str:
    source = config.sources.get(name, "default")
    return _ENV[name] if source == "default" else source


def tls_enabled(config: CoreSettings) -> bool:
    return bool(config.mysql_ssl_ca or config.mysql_ssl_cert or config.mysql_ssl_key)


def tls_context(config: CoreSettings) -> ssl.SSLContext | None:
    """The client context for MLFLOW_MYSQL_SSL_*, or None when none is set."""
    if not tls_enabled(config):
        return None
    try:
        ctx = ssl.create_default_context(cafile=config.mysql_ssl_ca)
    except (OSError, ssl.SSLError) as exc:
        raise MySQLTLSError(
            f"cannot use {config.mysql_ssl_ca} ({_origin(config, 'mysql_ssl_ca')}) as a CA file: {exc}"
        ) from None
    # Chain verified, host name not: the module docstring says why (Cloud SQL-style certificates).
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.mysql_ssl_cert or config.mysql_ssl_key:
        try:
            ctx.load_cert_chain(config.mysql_ssl_cert or "", config.mysql_ssl_key)
        except (OSError, ssl.SSLError) as exc:
            raise MySQLTLSError(
                f"cannot use the client certificate {config.mysql_ssl_cert} ({_origin(config, 'mysql_ssl_cert')})"
                f" with the key {config.mysql_ssl_key or '(in the certificate file)'}: {exc}"
            ) from None
    return ctx


class _TLSRequiredConnection(aiomysql.Connection):  # type: ignore[misc]
    async def _request_authentication(self) -> None:
        # Runs right after the server's greeting, before the client sends its user name.
        if not self.server_capabilities & CLIENT.SSL:
            raise pymysql.err.OperationalError(
                CR.CR_SSL_CONNECTION_ERROR,
                "TLS is required (MLFLOW_MYSQL_SSL_* is set) but the server does not offer it",
            )
        await super()._request_authentication()


async def _connect_tls(**kwargs: Any) -> aiomysql.Connection:
    connection = _TLSRequiredConnection(**kwargs)
    await connection._connect()
    return connection


def connect_args(config: CoreSettings) -> dict[str, Any]:
    """aiomysql connect arguments for the engine: TLS, required, when MLFLOW_MYSQL_SSL_* is set."""
    ctx = tls_context(config)
    if ctx is None:
        return {}
    return {"ssl": ctx, "async_creator_fn": _connect_tls}


def explain(orig: BaseException, config: CoreSettings) -> str:
    """A one-line reason a MySQL connection failed: the driver's message, the TLS error it hides,
    and a hint at the setting that is the likely cause. Never contains the password."""
    text = str(orig)
    cause = orig.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        ca = config.mysql_ssl_ca or "the system's trust store"
        text += (f" (TLS: certificate verify failed: {cause.verify_message}; is the server's certificate"
                 f" signed by the CA in {ca} ({_origin(config, 'mysql_ssl_ca')})?)")
    elif isinstance(cause, (ssl.SSLError, OSError)) and cause is not None:
        text += f" ({cause})"
    code = orig.args[0] if isinstance(orig, pymysql.err.MySQLError) and orig.args else None
    if code == 1045 and not tls_enabled(config):  # ER_ACCESS_DENIED_ERROR
        text += (" (an account that REQUIREs SSL is refused like this without TLS: set MLFLOW_MYSQL_SSL_CA to the "
                 "CA file of the server's certificate)")
    elif code == 1045 and not config.mysql_ssl_cert:
        text += (" (an account that REQUIREs X509 is refused like this without a client certificate: set "
                 "MLFLOW_MYSQL_SSL_CERT and MLFLOW_MYSQL_SSL_KEY)")
    return text
