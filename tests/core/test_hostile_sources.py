"""Issue 13, finding 2 (creation side): model-version sources and experiment artifact locations.

Sources are refused as `mlflow server` 3.17 refuses them, with its messages (each row checked
against it): a local path outside the artifact directory of the run named by run_id, a proxied
source outside that run's root, a host-addressed scheme (sftp, http, ...) pointing away from the
server's storage, `..` segments. An experiment's artifact_location must lie inside the server's
artifact roots or --artifact-allowed-locations (MLflow accepts any object-store URI there; that
is the hole: the server's credentials then read the other bucket).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.core.conftest import Api
from tests.core.registry_support import MV, new_logged_model, new_model
from tracking_core.app import build_app
from tracking_core.settings import CoreSettings

LOCAL = ("To use a local path as a model version source, the run_id request parameter has to be specified and "
         "the local path has to be contained within the artifact directory of the run specified by the run_id.")
OUTSIDE_RUN = "The run_id request parameter must identify the resource that contains the source."
RELATIVE = "an absolute path must be provided without relative path references present"


@pytest.mark.parametrize(
    ("source", "with_run", "fragment"),
    [
        ("/tmp/model", False, LOCAL),
        ("file:///tmp/m", False, LOCAL),
        ("/etc", True, LOCAL),
        ("mlflow-artifacts:/1/x/artifacts/m", False, OUTSIDE_RUN),
        ("mlflow-artifacts:/1/other-run/artifacts/m", True, OUTSIDE_RUN),
        ("sftp://evil.example/x", False, "'source' cannot use the 'sftp' scheme"),
        ("http://evil.example/api/2.0/mlflow-artifacts/artifacts/x", False, "'source' cannot use the 'http' scheme"),
        ("mlflow-artifacts://evil.example/x", False, "'source' cannot use the 'mlflow-artifacts' scheme"),
        ("s3://b/a/../c", False, RELATIVE),
    ],
    ids=["local-no-run", "file-uri-no-run", "local-outside-run", "proxied-no-run", "proxied-other-run",
         "sftp-elsewhere", "http-elsewhere", "proxy-other-host", "parent-segment"],
)
async def test_sources_mlflow_refuses(api: Api, source: str, with_run: bool, fragment: str) -> None:
    name = await new_model(api)
    body = {"name": name, "source": source}
    if with_run:
        body["run_id"] = (await api.new_run(await api.new_experiment()))["info"]["run_id"]
    error = await api.post(f"{MV}/create", body, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE" and fragment in error["message"]
    assert error["message"].startswith(("Invalid model version source: ", "'source' cannot use"))
    assert "model_versions" not in await api.get(f"{MV}/search", {"filter": f"name = '{name}'"})


async def test_sources_inside_the_run_or_model_are_accepted(api: Api) -> None:
    name = await new_model(api)
    experiment = await api.new_experiment()
    run = (await api.new_run(experiment))["info"]
    source = run["artifact_uri"] + "/model"  # mlflow-artifacts:/<exp>/<run>/artifacts/model
    version = (await api.post(f"{MV}/create", {"name": name, "source": source, "run_id": run["run_id"]}))
    assert version["model_version"]["source"] == source
    logged = await new_logged_model(api, experiment, source_run_id=run["run_id"])
    body = {"name": name, "source": logged["artifact_uri"], "model_id": logged["model_id"]}
    await api.post(f"{MV}/create", body)
    await api.post(f"{MV}/create", {"name": name, "source": "s3://another-bucket/m"})  # as MLflow: reads are confined


async def test_local_source_inside_a_local_run_root(backend_uri: str, tmp_path: Path) -> None:
    root = tmp_path / "runs-root"
    config = CoreSettings(backend_store_uri=backend_uri, artifacts_destination=str(tmp_path / "dest"),
                          default_artifact_root=str(root), serve_artifacts=False)
    async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as client:
        api = Api(client)
        run = (await api.new_run(await api.new_experiment()))["info"]
        name = await new_model(api)
        inside = run["artifact_uri"] + "/model"
        await api.post(f"{MV}/create", {"name": name, "source": inside, "run_id": run["run_id"]})
        error = await api.post(f"{MV}/create", {"name": name, "source": str(root), "run_id": run["run_id"]},
                               expect=400)
        assert LOCAL in error["message"]


@pytest.mark.parametrize(
    "location",
    ["s3://another-bucket/x", "gs://another-bucket", "sftp://evil.example/x", "/etc", "file:///tmp/elsewhere",
     "mlflow-artifacts://evil.example/x", "s3://artifacts/ok/../../another", "wasbs://c@acct.blob.core.windows.net/x"],
)
async def test_experiment_location_outside_the_roots_is_refused(api: Api, location: str) -> None:
    name = f"loc-{uuid.uuid4().hex[:8]}"
    error = await api.post("experiments/create", {"name": name, "artifact_location": location}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'artifact_location' must lie inside" in error["message"]
    await api.get("experiments/get-by-name", {"experiment_name": name}, expect=404)


async def test_allow_list_admits_extra_locations(backend_uri: str, tmp_path: Path) -> None:
    config = CoreSettings(backend_store_uri=backend_uri, artifacts_destination=str(tmp_path / "dest"),
                          artifact_allowed_locations=("s3://team-bucket/models", "sftp://files.example/share"))
    async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as client:
        api = Api(client)
        for location, ok in [("s3://team-bucket/models/vision", True), ("s3://team-bucket/models", True),
                             ("s3://team-bucket/models-other", False), ("s3://team-bucket", False),
                             ("sftp://files.example/share/x", True), (str(tmp_path / "dest" / "exp"), True)]:
            body = {"name": f"loc-{uuid.uuid4().hex[:8]}", "artifact_location": location}
            await api.post("experiments/create", body, expect=200 if ok else 400)
        name = await new_model(api)
        await api.post(f"{MV}/create", {"name": name, "source": "sftp://files.example/share/m"})
