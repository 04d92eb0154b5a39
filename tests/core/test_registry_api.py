"""Registered models and aliases (spec §3.7, §5.1), on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from tests.core.conftest import Api
from tests.core.registry_support import (
    MV,
    RM,
    delete,
    get_model,
    get_version,
    new_model,
    new_version,
    patch,
    unique,
)


async def test_create_and_get(api: Api) -> None:
    name = unique()
    created = await api.post(
        f"{RM}/create", {"name": name, "description": "churn model", "tags": [{"key": "team", "value": "ml"}]}
    )
    model = created["registered_model"]
    assert model["name"] == name
    assert model["creation_timestamp"] == model["last_updated_timestamp"] > 0
    assert model["description"] == "churn model"
    assert model["tags"] == [{"key": "team", "value": "ml"}]
    assert "latest_versions" not in model and "aliases" not in model
    assert await get_model(api, name) == model
    mirrored = await api.call("GET", "/ajax-api/2.0/mlflow/registered-models/get", params={"name": name})
    assert mirrored["registered_model"] == model


async def test_duplicate_name_is_resource_already_exists(api: Api) -> None:
    name = await new_model(api)
    error = await api.post(f"{RM}/create", {"name": name}, expect=400)
    assert error == {
        "error_code": "RESOURCE_ALREADY_EXISTS",
        "message": f"Registered Model (name={name}) already exists.",
    }


BAD_NAMES = [
    ("missing", {}, "Missing value for required parameter 'name'"),
    ("blank", {"name": "   "}, "Missing value for required parameter 'name'"),
    ("slash", {"name": "a/b"}, "Names cannot contain '/' or ':'"),
    ("colon", {"name": "a:b"}, "Names cannot contain '/' or ':'"),
    ("parent path", {"name": ".."}, "relative paths"),
    ("too long", {"name": "x" * 257}, "exceeds the maximum length of 256"),
    ("bad tag key", {"name": "ok", "tags": [{"key": "../k", "value": "v"}]}, "Names may only contain"),
    ("long tag value", {"name": "ok", "tags": [{"key": "k", "value": "v" * 100_001}]}, "maximum length"),
]


@pytest.mark.parametrize(("body", "fragment"), [r[1:] for r in BAD_NAMES], ids=[r[0] for r in BAD_NAMES])
async def test_create_rejects(api: Api, body: dict[str, Any], fragment: str) -> None:
    if body.get("name") == "ok":
        body = {**body, "name": unique()}
    error = await api.post(f"{RM}/create", body, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert fragment in error["message"]


async def test_unknown_model(api: Api) -> None:
    name = unique("missing")
    for method, path, body in [
        ("GET", f"{RM}/get", None),
        ("POST", f"{RM}/rename", {"new_name": unique()}),
        ("PATCH", f"{RM}/update", {"description": "x"}),
        ("DELETE", f"{RM}/delete", {}),
        ("POST", f"{RM}/set-tag", {"key": "k", "value": "v"}),
        ("DELETE", f"{RM}/delete-tag", {"key": "k"}),
        ("DELETE", f"{RM}/alias", {"alias": "a"}),
        ("GET", f"{RM}/get-latest-versions", None),
        ("POST", f"{MV}/create", {"source": "s3://b/m"}),
    ]:
        if method == "GET":
            error = await api.call(method, path, params={"name": name}, expect=404)
        else:
            error = await api.call(method, path, {"name": name, **body}, expect=404)
        assert error == {
            "error_code": "RESOURCE_DOES_NOT_EXIST",
            "message": f"Registered Model with name={name} not found",
        }


async def test_rename_takes_versions_tags_and_aliases_along(api: Api) -> None:
    name = await new_model(api, tags=[{"key": "k", "value": "v"}])
    await new_version(api, name)
    await api.post(f"{RM}/alias", {"name": name, "alias": "champion", "version": "1"})
    new_name = unique("renamed")
    renamed = (await api.post(f"{RM}/rename", {"name": name, "new_name": new_name}))["registered_model"]
    assert renamed["name"] == new_name
    assert renamed["tags"] == [{"key": "k", "value": "v"}]
    assert renamed["aliases"] == [{"alias": "champion", "version": "1"}]
    assert renamed["latest_versions"][0]["name"] == new_name
    assert (await get_version(api, new_name, 1))["aliases"] == ["champion"]
    await api.get(f"{RM}/get", {"name": name}, expect=404)
    await api.get(f"{MV}/get", {"name": name, "version": "1"}, expect=404)
    # Renaming onto a taken name fails; onto itself is a no-op.
    other = await new_model(api)
    error = await api.post(f"{RM}/rename", {"name": new_name, "new_name": other}, expect=400)
    assert error["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert (await api.post(f"{RM}/rename", {"name": other, "new_name": other}))["registered_model"][
        "name"
    ] == other
    error = await api.post(f"{RM}/rename", {"name": other, "new_name": "a/b"}, expect=400)
    assert "Names cannot contain" in error["message"]


async def test_update_description(api: Api) -> None:
    name = await new_model(api, description="old")
    before = await get_model(api, name)
    updated = (await patch(api, f"{RM}/update", {"name": name, "description": "new"}))["registered_model"]
    assert updated["description"] == "new"
    assert updated["last_updated_timestamp"] >= before["last_updated_timestamp"]
    assert await get_model(api, name) == updated


async def test_delete_removes_versions_tags_and_aliases(api: Api) -> None:
    name = await new_model(api, tags=[{"key": "k", "value": "v"}])
    for _ in range(3):
        await new_version(api, name, tags=[{"key": "t", "value": "1"}])
    await api.post(f"{RM}/alias", {"name": name, "alias": "prod", "version": "2"})
    await delete(api, f"{MV}/delete", {"name": name, "version": "3"})
    assert await delete(api, f"{RM}/delete", {"name": name}) == {}
    await api.get(f"{RM}/get", {"name": name}, expect=404)
    await api.get(f"{MV}/get", {"name": name, "version": "1"}, expect=404)
    assert await api.get(f"{MV}/search", {"filter": f"name = '{name}'"}) == {}
    # A hard delete: the name is free again, versions (tombstones too) and aliases are gone.
    await new_model(api, name)
    assert (await new_version(api, name))["version"] == "1"
    model = await get_model(api, name)
    assert "aliases" not in model and "tags" not in model
    assert await get_version(api, name, 1) == model["latest_versions"][0]
    assert "tags" not in model["latest_versions"][0]


async def test_model_tags(api: Api) -> None:
    name = await new_model(api)
    await api.post(f"{RM}/set-tag", {"name": name, "key": "b", "value": "1"})
    await api.post(f"{RM}/set-tag", {"name": name, "key": "a", "value": "2"})
    await api.post(f"{RM}/set-tag", {"name": name, "key": "b", "value": "3"})  # upsert
    assert (await get_model(api, name))["tags"] == [{"key": "a", "value": "2"}, {"key": "b", "value": "3"}]
    assert await delete(api, f"{RM}/delete-tag", {"name": name, "key": "a"}) == {}
    assert await delete(api, f"{RM}/delete-tag", {"name": name, "key": "never-set"}) == {}
    assert (await get_model(api, name))["tags"] == [{"key": "b", "value": "3"}]
    error = await api.post(f"{RM}/set-tag", {"name": name, "key": "", "value": "x"}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_aliases(api: Api) -> None:
    name = await new_model(api)
    for _ in range(3):
        await new_version(api, name)
    assert await api.post(f"{RM}/alias", {"name": name, "alias": "champion", "version": "1"}) == {}
    # `version` is a protobuf string: MLflow refuses a JSON number there, and so do we.
    refused = await api.post(f"{RM}/alias", {"name": name, "alias": "challenger", "version": 2}, expect=400)
    assert refused["error_code"] == "INVALID_PARAMETER_VALUE" and "'version'" in refused["message"]
    await api.post(f"{RM}/alias", {"name": name, "alias": "challenger", "version": "2"})
    by_alias = (await api.get(f"{RM}/alias", {"name": name, "alias": "champion"}))["model_version"]
    assert by_alias == await get_version(api, name, 1)
    assert by_alias["version"] == "1" and by_alias["aliases"] == ["champion"]
    assert (await get_model(api, name))["aliases"] == [
        {"alias": "challenger", "version": "2"},
        {"alias": "champion", "version": "1"},
    ]
    await api.post(f"{RM}/alias", {"name": name, "alias": "champion", "version": "3"})  # moves
    assert (await api.get(f"{RM}/alias", {"name": name, "alias": "champion"}))["model_version"][
        "version"
    ] == "3"
    assert "aliases" not in await get_version(api, name, 1)
    # `latest` is not stored: it always names the highest live version.
    assert (await api.get(f"{RM}/alias", {"name": name, "alias": "Latest"}))["model_version"][
        "version"
    ] == "3"
    assert await delete(api, f"{RM}/alias", {"name": name, "alias": "champion"}) == {}
    assert await delete(api, f"{RM}/alias", {"name": name, "alias": "never-set"}) == {}
    # MLflow answers a missing alias with 400 INVALID_PARAMETER_VALUE, not 404.
    error = await api.get(f"{RM}/alias", {"name": name, "alias": "champion"}, expect=400)
    assert error == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Registered model alias champion not found.",
    }
    assert (await get_model(api, name))["aliases"] == [{"alias": "challenger", "version": "2"}]


async def test_latest_alias_of_a_model_without_versions(api: Api) -> None:
    name = await new_model(api)
    error = await api.get(f"{RM}/alias", {"name": name, "alias": "latest"}, expect=404)
    assert error["message"] == f"Latest version not found for model {name}."


BAD_ALIASES = [
    ("empty", "", "Missing value for required parameter 'alias'"),
    ("space", "a b", "Invalid alias name: 'a b'"),
    ("dot", "a.b", "Invalid alias name: 'a.b'"),
    ("non-ascii", "chämpion", "Invalid alias name"),
    ("too long", "a" * 256, "exceeds the maximum length of 255"),
    ("latest", "latest", "'latest' alias name (case insensitive) is reserved."),
    ("LATEST", "LATEST", "'latest' alias name (case insensitive) is reserved."),
    ("v1", "v1", "Version alias name 'v1' is reserved."),
    ("V12", "V12", "Version alias name 'V12' is reserved."),
]


@pytest.mark.parametrize(("alias", "message"), [r[1:] for r in BAD_ALIASES], ids=[r[0] for r in BAD_ALIASES])
async def test_set_alias_rejects(api: Api, alias: str, message: str) -> None:
    name = await new_model(api)
    await new_version(api, name)
    error = await api.post(f"{RM}/alias", {"name": name, "alias": alias, "version": "1"}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in error["message"]


@pytest.mark.parametrize("alias", ["a" * 255, "v1a", "version1", "champion-2_b", "V"], ids=str.__len__)
async def test_set_alias_accepts(api: Api, alias: str) -> None:
    name = await new_model(api)
    await new_version(api, name)
    await api.post(f"{RM}/alias", {"name": name, "alias": alias, "version": "1"})
    assert (await api.get(f"{RM}/alias", {"name": name, "alias": alias}))["model_version"]["aliases"] == [
        alias
    ]


async def test_alias_needs_a_live_version(api: Api) -> None:
    name = await new_model(api)
    await new_version(api, name)
    error = await api.post(f"{RM}/alias", {"name": name, "alias": "a", "version": "2"}, expect=404)
    assert error["message"] == f"Model Version (name={name}, version=2) not found"
    error = await api.post(f"{RM}/alias", {"name": name, "alias": "a", "version": "two"}, expect=400)
    assert error["message"] == "Parameter 'version' must be an integer, got 'two'."
    await delete(api, f"{MV}/delete", {"name": name, "version": "1"})
    await api.post(f"{RM}/alias", {"name": name, "alias": "a", "version": "1"}, expect=404)


async def test_get_latest_versions(api: Api) -> None:
    name = await new_model(api)
    for _ in range(4):
        await new_version(api, name)
    await api.post(f"{MV}/transition-stage", {"name": name, "version": "1", "stage": "Production"})
    await api.post(f"{MV}/transition-stage", {"name": name, "version": "2", "stage": "staging"})

    def versions(answer: dict[str, Any]) -> list[tuple[str, str]]:
        return [(v["version"], v["current_stage"]) for v in answer.get("model_versions", [])]

    every = [("1", "Production"), ("2", "Staging"), ("4", "None")]
    assert versions(await api.post(f"{RM}/get-latest-versions", {"name": name})) == every
    assert versions(await api.get(f"{RM}/get-latest-versions", {"name": name})) == every
    some = await api.get(
        f"{RM}/get-latest-versions", [("name", name), ("stages", "production"), ("stages", "None")]
    )
    assert versions(some) == [("1", "Production"), ("4", "None")]
    assert await api.post(f"{RM}/get-latest-versions", {"name": name, "stages": ["Archived"]}) == {}
    error = await api.post(f"{RM}/get-latest-versions", {"name": name, "stages": ["Prod"]}, expect=400)
    assert (
        error["message"]
        == "Invalid Model Version stage: Prod. Value must be one of None, Staging, Production, Archived."
    )
    latest = (await get_model(api, name))["latest_versions"]
    assert [(v["version"], v["current_stage"]) for v in latest] == every


async def test_many_long_aliases_come_back_whole(api: Api) -> None:
    """Past 1024 characters of aliases (MySQL's GROUP_CONCAT limit), the list is read directly."""
    name = await new_model(api)
    await new_version(api, name)
    await new_version(api, name)
    aliases = sorted(f"alias-{i:03d}-" + "x" * 40 for i in range(40))
    for i, alias in enumerate(aliases):
        await api.post(f"{RM}/alias", {"name": name, "alias": alias, "version": str(1 + i % 2)})
    model = await get_model(api, name)
    assert [a["alias"] for a in model["aliases"]] == aliases
    assert (await get_version(api, name, 1))["aliases"] == aliases[0::2]
    found = await api.get(f"{MV}/search", {"filter": f"name = '{name}'", "order_by": "version_number"})
    assert [v["aliases"] for v in found["model_versions"]] == [aliases[0::2], aliases[1::2]]
