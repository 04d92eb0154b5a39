"""Model-version sources (spec §3.7, §5.5, §12.14): where a version's files are, and which
sources are refused. Also the registry on its own database (`--registry-store-uri`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from tests.core.conftest import Api
from tests.core.registry_support import MV, RM, new_logged_model, new_model, new_version
from tracking_core.app import build_app
from tracking_core.settings import CoreSettings
from tracking_core.store import schema

MODEL_VERSIONS_TAG = "mlflow.modelVersions"


@contextlib.asynccontextmanager
async def api_for(config: CoreSettings) -> AsyncIterator[Api]:
    async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as client:
        yield Api(client)


async def download_uri(api: Api, name: str, version: str) -> str:
    return str((await api.get(f"{MV}/get-download-uri", {"name": name, "version": version}))["artifact_uri"])


async def logged_model_tag(api: Api, model_id: str) -> Any:
    tags = (await api.get(f"logged-models/{model_id}"))["model"]["info"].get("tags", [])
    value = {t["key"]: t["value"] for t in tags}.get(MODEL_VERSIONS_TAG)
    return json.loads(value) if value else None


async def test_logged_model_source_resolves_to_its_artifacts(api: Api) -> None:
    experiment_id = await api.new_experiment()
    run_id = (await api.new_run(experiment_id))["info"]["run_id"]
    logged = await new_logged_model(api, experiment_id, source_run_id=run_id)
    model_id = logged["model_id"]
    name = await new_model(api)
    # What `register_model("models:/m-...")` sends: source and model_id, no run_id.
    version = await new_version(api, name, f"models:/{model_id}", model_id=model_id)
    assert version["source"] == f"models:/{model_id}"
    assert (version["model_id"], version["run_id"]) == (model_id, run_id)
    assert await download_uri(api, name, "1") == logged["artifact_uri"]
    assert logged["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"
    assert await logged_model_tag(api, model_id) == [{"name": name, "version": "1"}]
    # A second registration appends; the source alone identifies the logged model too.
    other = await new_model(api)
    await new_version(api, other, f"models:/{model_id}")
    assert await logged_model_tag(api, model_id) == [
        {"name": name, "version": "1"},
        {"name": other, "version": "1"},
    ]


async def test_logged_model_sources_that_do_not_resolve(api: Api) -> None:
    name = await new_model(api)
    missing = "m-" + "0" * 32
    error = await api.post(f"{MV}/create", {"name": name, "source": f"models:/{missing}"}, expect=404)
    assert error["error_code"] == "RESOURCE_DOES_NOT_EXIST" and missing in error["message"]
    experiment_id = await api.new_experiment()
    model_id = (await new_logged_model(api, experiment_id))["model_id"]
    body = {"name": name, "source": f"models:/{model_id}", "model_id": missing}
    error = await api.post(f"{MV}/create", body, expect=400)
    assert "The model_id request parameter must identify" in error["message"]
    await api.call("DELETE", f"logged-models/{model_id}")
    await api.post(f"{MV}/create", {"name": name, "source": f"models:/{model_id}"}, expect=404)
    # Nothing was created by the refused attempts.
    assert (await new_version(api, name))["version"] == "1"


async def test_run_source_resolves_to_the_run_artifacts(api: Api) -> None:
    run = (await api.new_run(await api.new_experiment()))["info"]
    name = await new_model(api)
    version = await new_version(api, name, f"runs:/{run['run_id']}/model/sub")
    assert version["run_id"] == run["run_id"]
    assert await download_uri(api, name, "1") == f"{run['artifact_uri']}/model/sub"
    # Deleting the run does not break the version.
    await api.post("runs/delete", {"run_id": run["run_id"]})
    assert await download_uri(api, name, "1") == f"{run['artifact_uri']}/model/sub"
    error = await api.post(f"{MV}/create", {"name": name, "source": "runs:/" + "f" * 32 + "/m"}, expect=404)
    assert error["message"] == f"Run with id={'f' * 32} not found"
    body = {"name": name, "source": f"runs:/{run['run_id']}/m", "run_id": "e" * 32}
    error = await api.post(f"{MV}/create", body, expect=400)
    assert "The run_id request parameter must identify" in error["message"]


async def test_registry_source_copies_the_lineage(api: Api) -> None:
    experiment_id = await api.new_experiment()
    logged = await new_logged_model(api, experiment_id)
    source_model = await new_model(api)
    await new_version(api, source_model, f"models:/{logged['model_id']}")
    copy = await new_model(api)
    version = await new_version(api, copy, f"models:/{source_model}/1")
    assert version["model_id"] == logged["model_id"]
    assert await download_uri(api, copy, "1") == logged["artifact_uri"]
    await api.post(f"{MV}/create", {"name": copy, "source": f"models:/{source_model}/9"}, expect=404)


UNSAFE_SOURCES = [
    ("parent segment", "s3://bucket/a/../b"),
    ("leading parent", "../etc/passwd"),
    ("encoded parent", "file:///data/%2e%2e/secret"),
    ("double-encoded parent", "mlflow-artifacts:/1/%252E%252E/x"),
    ("backslash parent", "C:\\models\\..\\x"),
    ("NUL", "s3://bucket/a\x00b"),
    ("encoded NUL", "s3://bucket/a%00b"),
    ("run path escape", "runs:/" + "a" * 32 + "/../../x"),
]


@pytest.mark.parametrize("source", [r[1] for r in UNSAFE_SOURCES], ids=[r[0] for r in UNSAFE_SOURCES])
async def test_unsafe_sources_are_refused(api: Api, source: str) -> None:
    name = await new_model(api)
    error = await api.post(f"{MV}/create", {"name": name, "source": source}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert error["message"].startswith(f"Invalid model version source: '{source}'.")


@pytest.mark.parametrize(
    "source",
    ["s3://b/a..b/c", "s3://b/models/..hidden/x", "gs://b/v1.0/model"],
    ids=["dots inside a name", "dot-prefixed name", "version dots"],
)
async def test_dots_that_are_not_parent_segments_are_fine(api: Api, source: str) -> None:
    name = await new_model(api)
    await new_version(api, name, source)
    assert await download_uri(api, name, "1") == source


REGEX = r"^(s3://approved-bucket/|models:/)"
REGEX_CASES = [
    ("matching prefix", "s3://approved-bucket/m/1", True),
    ("other bucket", "s3://other-bucket/m/1", False),
    ("prefix not at start", "file:///tmp/s3://approved-bucket/x", False),
    ("local path", "/tmp/model", False),
]


@pytest.mark.parametrize(("source", "allowed"), [r[1:] for r in REGEX_CASES], ids=[r[0] for r in REGEX_CASES])
async def test_source_regex(backend_uri: str, tmp_path: Path, source: str, allowed: bool) -> None:
    config = CoreSettings(
        backend_store_uri=backend_uri, artifacts_destination=str(tmp_path), model_version_source_regex=REGEX
    )
    async with api_for(config) as api:
        name = await new_model(api)
        if allowed:
            assert (await new_version(api, name, source))["source"] == source
        else:
            error = await api.post(f"{MV}/create", {"name": name, "source": source}, expect=400)
            assert error == {
                "error_code": "INVALID_PARAMETER_VALUE",
                "message": f"Invalid model version source: '{source}'.",
            }


async def test_source_regex_uses_search_not_match(backend_uri: str, tmp_path: Path) -> None:
    config = CoreSettings(
        backend_store_uri=backend_uri,
        artifacts_destination=str(tmp_path),
        model_version_source_regex="approved",
    )
    async with api_for(config) as api:
        name = await new_model(api)
        await new_version(api, name, "s3://bucket/approved/model")


async def test_without_regex_any_safe_source_is_accepted(api: Api) -> None:
    # Local paths and host-addressed schemes are refused as MLflow refuses them
    # (tests/core/test_hostile_sources.py); object-store URIs register, as in MLflow.
    name = await new_model(api)
    for source in ("s3://other-bucket/m", "gs://b/m", "wasbs://c@a.blob.core.windows.net/m"):
        await new_version(api, name, source)


def _registry_rows(uri: str, name: str) -> int:
    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(sa.text("SELECT count(*) FROM registered_models WHERE name = :n"), {"n": name})
            )
    finally:
        engine.dispose()


async def test_registry_on_its_own_database(api: Api, backend_uri: str, tmp_path: Path) -> None:
    registry_uri = f"sqlite:///{tmp_path}/registry.db"
    config = CoreSettings(
        backend_store_uri=backend_uri,
        registry_store_uri=registry_uri,
        artifacts_destination=str(tmp_path / "artifacts"),
    )
    await schema.prepare_all(config)
    async with api_for(config) as split:
        experiment_id = await split.new_experiment()
        run = (await split.new_run(experiment_id))["info"]
        logged = await new_logged_model(split, experiment_id, source_run_id=run["run_id"])
        name = await new_model(split)
        await new_version(split, name, f"models:/{logged['model_id']}", model_id=logged["model_id"])
        await new_version(split, name, f"runs:/{run['run_id']}/model")
        assert await download_uri(split, name, "1") == logged["artifact_uri"]
        assert await download_uri(split, name, "2") == f"{run['artifact_uri']}/model"
        assert await logged_model_tag(split, logged["model_id"]) == [{"name": name, "version": "1"}]
    # The registry rows are in the registry database only; the logged model's tag is in the
    # tracking database, which the plain `api` app (no registry URI) reads.
    assert _registry_rows(registry_uri, name) == 1
    await api.get(f"{RM}/get", {"name": name}, expect=404)
    assert await logged_model_tag(api, logged["model_id"]) == [{"name": name, "version": "1"}]
