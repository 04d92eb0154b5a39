"""Parity: the same permission script against `trackgate server --auth basic` and against
`mlflow server --app-name basic-auth` (3.17), with the official client and AuthServiceClient, for
the behaviours both have. Each step's outcome (allowed / denied / the error code) must be the
one expected, on both servers: parity measured, not assumed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from tests.e2e.test_authz_matrix import as_user
from tests.server_process import stop, trackgate_server
from tests.services import free_port

pytestmark = pytest.mark.slow

PASSWORD = "Parity-Passw0rd-2026!"


@contextlib.contextmanager
def mlflow_basic_auth(workdir: Path) -> Iterator[str]:
    ini = workdir / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{workdir}/auth.db\nadmin_username = admin\nadmin_password = {PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = true\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKGATE_", "MLFLOW_"))}
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
    env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = "parity-test-only"
    argv = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--backend-store-uri", f"sqlite:///{workdir}/mlflow.db",
            "--artifacts-destination", str(workdir / "art")]
    log = open(workdir / "mlflow.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert process.poll() is None, (workdir / "mlflow.log").read_text()[-3000:]
            with contextlib.suppress(requests.RequestException):
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            raise AssertionError("mlflow server did not start:\n" + (workdir / "mlflow.log").read_text()[-3000:])
        yield url
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="module", params=["trackgate", "mlflow"])
def server_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "mlflow":
        with mlflow_basic_auth(workdir) as url:
            yield url
        return
    db = f"sqlite:///{workdir}/trackgate.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKGATE_", "MLFLOW_"))}
    made = subprocess.run([sys.executable, "-m", "gateway.cli", "users", "create", "admin", "--admin",
                           "--backend-store-uri", db], input=PASSWORD + "\n", capture_output=True, text=True,
                          env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    with trackgate_server(workdir, "--backend-store-uri", db, "--auth", "basic") as server:
        yield server.url


def outcome(action: Callable[[], Any]) -> str:
    try:
        action()
    except MlflowException as exc:
        text = str(exc)
        if "PERMISSION_DENIED" in text or "403" in text or "Permission denied" in text:
            return "denied"
        return getattr(exc, "error_code", "error")
    return "allowed"


def test_the_same_script_on_both_servers(server_url: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(server_url)
    os.environ["MLFLOW_TRACKING_USERNAME"] = "admin"  # as_user restores these
    auth = get_app_client("basic-auth", tracking_uri=server_url)
    with as_user(None):
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = "admin", PASSWORD
        for name in ("owner", "reader", "editor"):
            auth.create_user(name, PASSWORD)
    results: dict[str, str] = {}

    def step(name: str, who: str, action: Callable[[], Any]) -> None:
        with as_user(None):
            os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = who, PASSWORD
            results[name] = outcome(action)

    c = MlflowClient
    state: dict[str, Any] = {}
    step("owner creates an experiment", "owner",
         lambda: state.update(experiment=c().create_experiment("parity")))
    step("owner creates a run", "owner",
         lambda: state.update(run=c().create_run(state["experiment"]).info.run_id))
    step("owner creates a model", "owner", lambda: c().create_registered_model("parity-model"))
    step("owner grants EDIT on the experiment", "owner",
         lambda: auth.grant_user_permission("editor", "experiment", state["experiment"], "EDIT"))
    step("owner grants EDIT on the model", "owner",
         lambda: auth.grant_user_permission("editor", "registered_model", "parity-model", "EDIT"))
    step("a second grant on the same resource", "owner",
         lambda: auth.grant_user_permission("editor", "experiment", state["experiment"], "READ"))
    step("reader reads the experiment", "reader", lambda: c().get_experiment(state["experiment"]))
    step("reader reads the run", "reader", lambda: c().get_run(state["run"]))
    step("reader tags the experiment", "reader",
         lambda: c().set_experiment_tag(state["experiment"], "k", "v"))
    step("reader logs a metric", "reader", lambda: c().log_metric(state["run"], "m", 1.0))
    step("reader grants itself", "reader",
         lambda: auth.grant_user_permission("reader", "experiment", state["experiment"], "MANAGE"))
    step("reader creates a user", "reader", lambda: auth.create_user("mallory", PASSWORD))
    step("editor logs a metric", "editor", lambda: c().log_metric(state["run"], "m", 2.0))
    step("editor tags the model", "editor", lambda: c().set_registered_model_tag("parity-model", "k", "v"))
    step("editor deletes the run", "editor", lambda: c().delete_run(state["run"]))
    step("reader deletes the model", "reader", lambda: c().delete_registered_model("parity-model"))
    step("owner reads reader's effective permission", "owner",
         lambda: auth.get_user_permission("reader", "experiment", state["experiment"]))
    step("admin reads reader's effective permission", "admin",
         lambda: state.update(effective=auth.get_user_permission("reader", "experiment", state["experiment"])))
    step("editor reads its own effective permission", "editor",
         lambda: state.update(own=auth.get_user_permission("editor", "experiment", state["experiment"])))
    step("owner deletes the run", "owner", lambda: c().delete_run(state["run"]))
    # Resources that do not exist: the default permission (READ) decides for an id or a name; a
    # run has no experiment to take one from, so it is refused (and its existence not told).
    step("reader reads an experiment that does not exist", "reader", lambda: c().get_experiment("987654"))
    step("reader tags an experiment that does not exist", "reader",
         lambda: c().set_experiment_tag("987654", "k", "v"))
    step("reader reads a run that does not exist", "reader", lambda: c().get_run("0" * 32))
    step("reader reads a model that does not exist", "reader", lambda: c().get_registered_model("no-such"))
    step("admin reads a run that does not exist", "admin", lambda: c().get_run("0" * 32))
    mlflow.set_tracking_uri("")

    assert results == {
        "owner creates an experiment": "allowed",
        "owner creates a run": "allowed",
        "owner creates a model": "allowed",
        "owner grants EDIT on the experiment": "allowed",
        "owner grants EDIT on the model": "allowed",
        "a second grant on the same resource": "RESOURCE_ALREADY_EXISTS",
        "reader reads the experiment": "allowed",
        "reader reads the run": "allowed",
        "reader tags the experiment": "denied",
        "reader logs a metric": "denied",
        "reader grants itself": "denied",
        "reader creates a user": "denied",
        "editor logs a metric": "allowed",
        "editor tags the model": "allowed",
        "editor deletes the run": "denied",
        "reader deletes the model": "denied",
        "owner reads reader's effective permission": "denied",
        "admin reads reader's effective permission": "allowed",
        "editor reads its own effective permission": "allowed",
        "owner deletes the run": "allowed",
        "reader reads an experiment that does not exist": "RESOURCE_DOES_NOT_EXIST",
        "reader tags an experiment that does not exist": "denied",
        "reader reads a run that does not exist": "denied",
        "reader reads a model that does not exist": "RESOURCE_DOES_NOT_EXIST",
        "admin reads a run that does not exist": "RESOURCE_DOES_NOT_EXIST",
    }
    assert (state["effective"].permission, state["effective"].allowed) == ("READ", False)
    assert (state["own"].permission, state["own"].allowed) == ("EDIT", True)
