"""`trackgate server`, `db upgrade` and `gc` on a TLS-only MariaDB, configured as for `mlflow server`:
the URI plus MLFLOW_MYSQL_SSL_CA (and _CERT/_KEY for an account that REQUIREs X509)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.server_process import trackgate_server
from tests.support.mariadb_tls import TLS_PASSWORD, TLSMariaDB, mariadb_tls  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.mariadb]


def _tls_env(db: TLSMariaDB, user: str) -> dict[str, str]:
    env = {"MLFLOW_MYSQL_SSL_CA": db.ca}
    if user == "x509_user":
        env |= {"MLFLOW_MYSQL_SSL_CERT": db.client_cert, "MLFLOW_MYSQL_SSL_KEY": db.client_key}
    return env


def _trackgate(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One `trackgate` command with only the given MLFLOW_MYSQL_SSL_* settings."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKGATE_", "MLFLOW_MYSQL_SSL_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=full_env)


def _ssl_accepts(db: TLSMariaDB) -> int:
    return int(str(db.sql("SHOW GLOBAL STATUS LIKE 'Ssl_accepts'")[0][1]))


@pytest.mark.parametrize("user", ["tls_user", "x509_user"], ids=["REQUIRE SSL", "REQUIRE X509"])
def test_mlflow_client_through_server_on_tls_mariadb(
    mariadb_tls: TLSMariaDB, tmp_path: Path, user: str  # noqa: F811
) -> None:
    database = mariadb_tls.new_database()
    uri = mariadb_tls.uri(user, database, TLS_PASSWORD if user == "tls_user" else None)
    accepted_before = _ssl_accepts(mariadb_tls)
    with trackgate_server(tmp_path, "--backend-store-uri", uri, env=_tls_env(mariadb_tls, user)) as server:
        client = MlflowClient(server.url)
        experiment_id = client.create_experiment("over-tls")
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "loss", 0.25, step=1)
        client.set_terminated(run.info.run_id)
        found = client.search_runs([experiment_id], filter_string="metrics.loss < 0.5")
        assert [r.info.run_id for r in found] == [run.info.run_id]
        assert found[0].data.metrics == {"loss": 0.25}
        assert TLS_PASSWORD not in server.log()
    # The server refuses plain TCP (require_secure_transport), and it did accept TLS handshakes.
    assert _ssl_accepts(mariadb_tls) > accepted_before
    tables = {row[0] for row in mariadb_tls.sql(f"SHOW TABLES FROM `{database}`")}
    assert {"experiments", "runs", "metrics", "alembic_version"} <= tables


@pytest.mark.parametrize(
    ("ca", "expected"),
    [
        (None, "set MLFLOW_MYSQL_SSL_CA"),
        ("other_ca", "certificate verify failed: self-signed certificate in certificate chain"),
    ],
    ids=["without CA setting", "CA that did not sign the server cert"],
)
def test_server_refuses_to_start_and_says_why(
    mariadb_tls: TLSMariaDB, tmp_path: Path, ca: str | None, expected: str  # noqa: F811
) -> None:
    uri = mariadb_tls.uri("tls_user", mariadb_tls.new_database(), TLS_PASSWORD)
    env = {"MLFLOW_MYSQL_SSL_CA": getattr(mariadb_tls, ca)} if ca else {}
    result = _trackgate(tmp_path, "server", "--port", "0", "--backend-store-uri", uri,
                        "--artifacts-destination", str(tmp_path / "artifacts"), env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Cannot open the database mysql://tls_user:***@127.0.0.1" in output
    assert expected in output
    assert "Traceback" not in output
    assert TLS_PASSWORD not in output


def test_db_upgrade_and_gc_with_client_certificate(mariadb_tls: TLSMariaDB, tmp_path: Path) -> None:  # noqa: F811
    uri = mariadb_tls.uri("x509_user", mariadb_tls.new_database())
    gc_args = ["gc", "--backend-store-uri", uri, "--artifacts-destination", str(tmp_path / "artifacts")]
    for refused in (
        _trackgate(tmp_path, "db", "upgrade", uri, env={"MLFLOW_MYSQL_SSL_CA": mariadb_tls.ca}),
        _trackgate(tmp_path, *gc_args, env={"MLFLOW_MYSQL_SSL_CA": mariadb_tls.ca}),
    ):
        assert refused.returncode == 1
        assert "set MLFLOW_MYSQL_SSL_CERT and MLFLOW_MYSQL_SSL_KEY" in refused.stderr
        assert "Traceback" not in refused.stderr

    env = _tls_env(mariadb_tls, "x509_user")
    upgraded = _trackgate(tmp_path, "db", "upgrade", uri, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Upgraded" in upgraded.stdout
    collected = _trackgate(tmp_path, *gc_args, env=env)
    assert collected.returncode == 0, collected.stderr
    assert "removed 0 run(s)" in collected.stdout
