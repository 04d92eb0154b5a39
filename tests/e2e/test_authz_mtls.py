"""A client-certificate caller is authorized like any other subject: its grants hold, the
default applies elsewhere, and search filters for it (`trackgate server` over TLS with
`--auth basic,mtls`, the official client with MLFLOW_TRACKING_CLIENT_CERT_PATH)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import trustme
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from tests.e2e.test_auth_client import cli, wait_ready
from tests.server_process import trackgate_server

pytestmark = pytest.mark.slow

PASSWORD = "mtls-admin-pass-1"
ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_CLIENT_CERT_PATH",
       "MLFLOW_TRACKING_SERVER_CERT_PATH")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    d = tmp_path_factory.mktemp("authz-mtls")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(d / "ca.pem")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(d / "server.pem")
    cert.private_key_pem.write_to_path(d / "server-key.pem")
    ca.issue_cert("svc.example.test", common_name="svc-trainer").private_key_and_cert_chain_pem.write_to_path(
        d / "client.pem")
    db = f"sqlite:///{d}/trackgate.db"
    made = cli("users", "create", "admin", "--admin", "--backend-store-uri", db, stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    args = ["--backend-store-uri", db, "--auth", "basic,mtls", "--tls-cert", str(d / "server.pem"),
            "--tls-key", str(d / "server-key.pem"), "--tls-client-ca", str(d / "ca.pem"),
            "--client-cert-mode", "optional"]
    with trackgate_server(d, *args, wait=False) as running:
        running.url = running.url.replace("http://", "https://")
        wait_ready(running, d / "ca.pem")
        yield running.url, d / "ca.pem", d / "client.pem"


def test_certificate_subject_gets_its_grants_and_the_default(tls_server: tuple[str, Path, Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url, ca, client_pem = tls_server
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(ca))
    mlflow.set_tracking_uri(url)
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
        admin = MlflowClient()
        granted = admin.create_experiment("svc-writes-here")
        other = admin.create_experiment("svc-reads-here")
        hidden = admin.create_experiment("svc-never-sees")
        other_run = admin.create_run(other).info.run_id
        auth = get_app_client("basic-auth", tracking_uri=url)
        auth.grant_user_permission("svc-trainer", "experiment", granted, "EDIT")
        auth.grant_user_permission("svc-trainer", "experiment", hidden, "DENY")

        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
        monkeypatch.setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", str(client_pem))
        svc = MlflowClient()
        run = svc.create_run(granted)
        svc.log_metric(run.info.run_id, "loss", 0.1)
        assert svc.get_run(run.info.run_id).info.user_id == "svc-trainer"
        assert svc.get_run(other_run).info.run_id == other_run  # READ by default
        with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
            svc.log_metric(other_run, "loss", 0.1)
        with pytest.raises(MlflowException, match="PERMISSION_DENIED"):
            svc.get_experiment(hidden)
        names = {e.name for e in svc.search_experiments()}
        assert {"svc-writes-here", "svc-reads-here"} <= names and "svc-never-sees" not in names
    finally:
        mlflow.set_tracking_uri("")
        for name in ENV:
            os.environ.pop(name, None)
