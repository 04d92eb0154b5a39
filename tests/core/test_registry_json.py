"""On SQLite the registry searches return messages SQLite rendered as JSON (store/registry_json.py);
other backends render them in Python (store/registry_render.py). Both must give byte-identical
responses.

The registry is filled through the REST API with the awkward cases: quotes, backslashes, control
and non-ASCII characters and 6,000-character values in names, descriptions and tags; versions in
every stage, a deleted latest version, aliases on several versions, a logged-model source; a
model with nothing but its name. Then every search is asked twice, once down each path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.core.conftest import Api
from tests.core.registry_support import MV, RM, delete, new_logged_model, new_model, new_version, patch, unique
from tracking_core.app import build_app
from tracking_core.settings import CoreSettings
from tracking_core.store import registry_json, schema

AWKWARD = ['quote " and \\ backslash', "tab\tnew\nline\r", "ünïcödé ☃ 𝄞", "\u0001\u001f control", "x" * 6000]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    uri = f"sqlite:///{tmp_path}/registry_json.db"
    await schema.prepare(CoreSettings(backend_store_uri=uri))
    config = CoreSettings(backend_store_uri=uri, artifacts_destination=str(tmp_path / "artifacts"))
    async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as client:
        yield Api(client)


async def _fill(api: Api) -> str:
    prefix = unique("json")
    await new_model(api, f"{prefix}-bare")
    for i, text in enumerate(AWKWARD):
        name = f"{prefix}-{i} {text[:30]}"
        tags = [{"key": "note", "value": text}, {"key": "A", "value": "upper"}, {"key": "empty", "value": ""}]
        await new_model(api, name, description=text, tags=tags)
        for v in range(1, 5):
            version_tags = [{"key": "z", "value": text}, {"key": "n", "value": str(v)}]
            await new_version(
                api,
                name,
                f"s3://b/{i}/{v}",
                run_id=f"{v:032x}",
                tags=version_tags,
                run_link=f"http://runs/{text[:10]}" if v % 2 else "",
                description=text if v > 2 else "",
            )
        stages = {1: "Production", 2: "Staging", 3: "Archived"}
        for v, stage in stages.items():
            await api.post(f"{MV}/transition-stage", {"name": name, "version": str(v), "stage": stage})
        await api.post(f"{RM}/alias", {"name": name, "alias": "champion", "version": "1"})
        await api.post(f"{RM}/alias", {"name": name, "alias": "b-side", "version": "1"})
        await api.post(f"{RM}/alias", {"name": name, "alias": "challenger", "version": "4"})
    # The highest version deleted: the next one down is the latest of its stage.
    await delete(api, f"{MV}/delete", {"name": f"{prefix}-1 {AWKWARD[1][:30]}", "version": "4"})
    await patch(api, f"{RM}/update", {"name": f"{prefix}-bare", "description": ""})
    exp = await api.new_experiment()
    logged = await new_logged_model(api, exp)
    await new_version(api, f"{prefix}-bare", f"models:/{logged['model_id']}")
    return prefix


async def _both_ways(api: Api, monkeypatch: pytest.MonkeyPatch, path: str, params: list[tuple[str, str]]) -> bytes:
    async def raw() -> bytes:
        resp = await api.client.get(f"/api/2.0/mlflow/{path}", params=params)
        assert resp.status == 200, await resp.text()
        return await resp.read()

    from_sql = await raw()
    with monkeypatch.context() as m:
        m.setattr(registry_json, "SUPPORTED", frozenset())
        from_python = await raw()
    assert from_sql == from_python
    return from_sql


SEARCHES = [
    ("models", RM, [], 1000),
    ("models newest first", RM, [("order_by", "timestamp DESC")], 1000),
    ("models page", RM, [], 2),
    ("versions", MV, [], 10_000),
    ("versions by name", MV, [("order_by", "name ASC"), ("order_by", "version_number ASC")], 10_000),
    ("versions page", MV, [], 5),
]


@pytest.mark.parametrize(("what", "params", "max_results"), [s[1:] for s in SEARCHES], ids=[s[0] for s in SEARCHES])
async def test_searches_match_the_portable_rendering(
    api: Api, monkeypatch: pytest.MonkeyPatch, what: str, params: list[tuple[str, str]], max_results: int
) -> None:
    prefix = await _fill(api)
    query = [("filter", f"name LIKE '{prefix}-%'"), ("max_results", str(max_results)), *params]
    body: dict[str, Any] = orjson.loads(await _both_ways(api, monkeypatch, f"{what}/search", query))
    found = body["registered_models" if what == RM else "model_versions"]
    assert len(found) == min(max_results, 6 if what == RM else 20)  # 5 x 4 versions, 1 deleted, 1 bare
    if max_results < 10:
        token = body["next_page_token"]
        await _both_ways(api, monkeypatch, f"{what}/search", [*query, ("page_token", token)])


async def test_the_awkward_cases_come_back_whole(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = await _fill(api)
    query = [("filter", f"name LIKE '{prefix}-%'")]
    models = orjson.loads(await _both_ways(api, monkeypatch, f"{RM}/search", query))["registered_models"]
    *full, bare = models  # "-bare" sorts after "-0 ..." to "-4 ..."
    assert bare["name"] == f"{prefix}-bare" and "tags" not in bare and "aliases" not in bare
    assert bare["latest_versions"][0]["source"].startswith("models:/")
    for model, text in zip(full, AWKWARD, strict=True):
        assert model["description"] == text
        assert model["tags"] == [
            {"key": "A", "value": "upper"},
            {"key": "empty", "value": ""},
            {"key": "note", "value": text},
        ]
        deleted_top = text == AWKWARD[1]  # its version 4 is gone, and the alias on it
        assert model["aliases"] == [
            {"alias": "b-side", "version": "1"},
            *([] if deleted_top else [{"alias": "challenger", "version": "4"}]),
            {"alias": "champion", "version": "1"},
        ]
        latest = {v["current_stage"]: v["version"] for v in model["latest_versions"]}
        assert latest == {"Production": "1", "Staging": "2", "Archived": "3", **({} if deleted_top else {"None": "4"})}
    versions = orjson.loads(
        await _both_ways(api, monkeypatch, f"{MV}/search", [("filter", f"name = '{full[0]['name']}'")])
    )["model_versions"]
    first = next(v for v in versions if v["version"] == "1")
    assert first["aliases"] == ["b-side", "champion"] and first["run_link"].startswith("http://runs/")
    assert first["description"] == "" and first["tags"][0] == {"key": "n", "value": "1"}
