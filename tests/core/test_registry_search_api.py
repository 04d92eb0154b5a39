"""Registry search (spec §6.4-6.6) through the API, on every backend.

Every test scopes its filter to names with its own random prefix, since the database is shared
by the whole session. The models of `catalog`:

    name      tags                         versions (run_id, source)
    {p}-Alpha team=vision, tier=gold       1 (r1, s3://b/alpha/1)  2 (r2, s3://b/alpha/2)
    {p}-beta  team=Vision                  1 (r1, s3://b/beta/1)
    {p}-gamma team=nlp                     -
    {p}-delta -                            1 (r3, s3://b/delta/1)  [tag stage=ok]
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.core.conftest import Api
from tests.core.registry_support import MV, RM, delete, new_model, new_version, unique

R1, R2, R3 = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture
async def catalog(api: Api) -> str:
    prefix = unique("search")
    await new_model(
        api, f"{prefix}-Alpha", tags=[{"key": "team", "value": "vision"}, {"key": "tier", "value": "gold"}]
    )
    await new_model(api, f"{prefix}-beta", tags=[{"key": "team", "value": "Vision"}])
    await new_model(api, f"{prefix}-gamma", tags=[{"key": "team", "value": "nlp"}])
    await new_model(api, f"{prefix}-delta")
    for name, source, run_id, tags in [
        ("Alpha", "s3://b/alpha/1", R1, []),
        ("beta", "s3://b/beta/1", R1, []),
        ("delta", "s3://b/delta/1", R3, [{"key": "stage", "value": "ok"}]),
        ("Alpha", "s3://b/alpha/2", R2, []),
    ]:
        # Timestamps are milliseconds: spaced out, the order tests never meet a tie.
        await asyncio.sleep(0.003)
        await new_version(api, f"{prefix}-{name}", source, run_id=run_id, tags=tags)
    return prefix


async def model_names(
    api: Api, prefix: str, filter_: str = "", order_by: list[str] | None = None
) -> list[str]:
    params: list[tuple[str, str]] = [
        ("filter", f"name LIKE '{prefix}-%'" + (f" AND {filter_}" if filter_ else ""))
    ]
    params += [("order_by", o) for o in order_by or []]
    answer = await api.get(f"{RM}/search", params)
    return [m["name"][len(prefix) + 1 :] for m in answer.get("registered_models", [])]


MODEL_FILTERS = [
    ("no extra filter", "", ["Alpha", "beta", "delta", "gamma"]),
    ("name equals", "name = '{p}-beta'", ["beta"]),
    ("name not equal", "name != '{p}-beta'", ["Alpha", "delta", "gamma"]),
    ("LIKE is case-sensitive", "name LIKE '%-alpha'", []),
    ("ILIKE is not", "name ILIKE '%-alpha'", ["Alpha"]),
    ("name IN", "name IN ('{p}-beta', '{p}-gamma', 'other')", ["beta", "gamma"]),
    ("name NOT IN", "name NOT IN ('{p}-beta', '{p}-gamma')", ["Alpha", "delta"]),
    ("tag equals is case-sensitive", "tags.team = 'vision'", ["Alpha"]),
    ("tag ILIKE", "tags.team ILIKE 'VISION'", ["Alpha", "beta"]),
    ("tag not equal needs the tag", "tags.team != 'nlp'", ["Alpha", "beta"]),
    ("two tags", "tags.team = 'vision' AND tags.`tier` LIKE 'go%'", ["Alpha"]),
    ("attribute prefix", "attributes.name = '{p}-delta'", ["delta"]),
]


@pytest.mark.parametrize(
    ("filter_", "expected"), [r[1:] for r in MODEL_FILTERS], ids=[r[0] for r in MODEL_FILTERS]
)
async def test_model_filters(api: Api, catalog: str, filter_: str, expected: list[str]) -> None:
    assert await model_names(api, catalog, filter_.replace("{p}", catalog)) == expected


async def test_model_order_by(api: Api, catalog: str) -> None:
    assert await model_names(api, catalog, order_by=["name DESC"]) == ["gamma", "delta", "beta", "Alpha"]
    # Version creation bumps the model's last_updated_timestamp; the rest keep their creation order.
    by_update = await model_names(api, catalog, order_by=["last_updated_timestamp DESC"])
    assert by_update[0] == "Alpha"
    assert await model_names(api, catalog, order_by=["timestamp DESC"]) == by_update


async def test_models_come_back_whole(api: Api, catalog: str) -> None:
    answer = await api.get(f"{RM}/search", {"filter": f"name = '{catalog}-Alpha'"})
    (model,) = answer["registered_models"]
    assert model == (await api.get(f"{RM}/get", {"name": f"{catalog}-Alpha"}))["registered_model"]
    assert [v["version"] for v in model["latest_versions"]] == ["2"]


MODEL_ERRORS = [
    (
        "unknown filter key",
        {"filter": "creation_timestamp > 1"},
        "Invalid attribute key 'creation_timestamp'",
    ),
    ("IN on a tag", {"filter": "tags.t IN ('a')"}, "Invalid comparator 'IN'"),
    ("unquoted value", {"filter": "name = x"}, "Expected a quoted string value"),
    ("OR", {"filter": "name = 'a' OR name = 'b'"}, "Invalid clause(s) in filter string"),
    (
        "order by creation time",
        {"order_by": "creation_timestamp"},
        "Invalid attribute key 'creation_timestamp'",
    ),
    ("order by tag", {"order_by": "tags.t"}, "Invalid entity type 'tags'"),
    (
        "duplicate order",
        [("order_by", "timestamp"), ("order_by", "last_updated_timestamp DESC")],
        "duplicate",
    ),
    ("too many results", {"max_results": "1001"}, "at most 1000"),
    ("zero results", {"max_results": "0"}, "max_results"),
    ("bad token", {"page_token": "???"}, "Invalid page token"),
]


@pytest.mark.parametrize(
    ("params", "fragment"), [r[1:] for r in MODEL_ERRORS], ids=[r[0] for r in MODEL_ERRORS]
)
async def test_model_search_rejects(api: Api, params: Any, fragment: str) -> None:
    error = await api.get(f"{RM}/search", params, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert fragment in error["message"]


async def collect_pages(api: Api, path: str, field: str, params: dict[str, str]) -> list[list[str]]:
    """Follow page tokens; every page must be non-empty and the last one must carry no token."""
    pages, token = [], None
    while True:
        answer = await api.get(path, {**params, **({"page_token": token} if token else {})})
        token = answer.get("next_page_token")
        page = [f"{e['name']}/{e['version']}" if "version" in e else e["name"] for e in answer.get(field, [])]
        assert page or not token, "an empty page with a next_page_token"
        pages.append(page)
        if not token:
            return pages


@pytest.mark.parametrize(
    ("count", "size", "shape"),
    [(5, 2, [2, 2, 1]), (4, 2, [2, 2]), (3, 5, [3])],
    ids=["partial last page", "exact multiple", "one page"],
)
async def test_model_paging(api: Api, count: int, size: int, shape: list[int]) -> None:
    prefix = unique("paging")
    names = [await new_model(api, f"{prefix}-{i}") for i in range(count)]
    pages = await collect_pages(
        api,
        f"{RM}/search",
        "registered_models",
        {"filter": f"name LIKE '{prefix}-%'", "max_results": str(size)},
    )
    assert [len(p) for p in pages] == shape
    assert [n for p in pages for n in p] == names


async def test_prompts_are_left_out_unless_asked_for(api: Api) -> None:
    prefix = unique("prompts")
    prompt_tag = {"key": "mlflow.prompt.is_prompt", "value": "true"}
    await new_model(api, f"{prefix}-prompt", tags=[prompt_tag])
    await new_model(api, f"{prefix}-model")
    await new_model(api, f"{prefix}-not-prompt", tags=[{"key": "mlflow.prompt.is_prompt", "value": "false"}])
    assert await model_names(api, prefix) == ["model", "not-prompt"]
    asked = "tags.`mlflow.prompt.is_prompt` = 'true'"
    assert await model_names(api, prefix, asked) == ["prompt"]
    assert await model_names(api, prefix, "tags.`mlflow.prompt.is_prompt` != 'false'") == ["prompt"]
    # Asking for non-prompts means "ordinary models", which carry no prompt tag at all.
    assert await model_names(api, prefix, "tags.`mlflow.prompt.is_prompt` = 'false'") == [
        "model",
        "not-prompt",
    ]


async def version_keys(
    api: Api, prefix: str, filter_: str = "", order_by: list[str] | None = None
) -> list[str]:
    params: list[tuple[str, str]] = [
        ("filter", f"name LIKE '{prefix}-%'" + (f" AND {filter_}" if filter_ else ""))
    ]
    params += [("order_by", o) for o in order_by or []]
    answer = await api.get(f"{MV}/search", params)
    return [f"{v['name'][len(prefix) + 1 :]}/{v['version']}" for v in answer.get("model_versions", [])]


VERSION_FILTERS = [
    ("name", "name = '{p}-Alpha'", ["Alpha/1", "Alpha/2"]),
    ("name IN", "name IN ('{p}-beta', '{p}-delta')", ["beta/1", "delta/1"]),
    ("run_id", f"run_id = '{R1}'", ["Alpha/1", "beta/1"]),
    ("run_id IN", f"run_id IN ('{R2}', '{R3}')", ["Alpha/2", "delta/1"]),
    ("run_id NOT IN", f"run_id NOT IN ('{R1}')", ["Alpha/2", "delta/1"]),
    ("source_path LIKE", "source_path LIKE 's3://b/alpha/%'", ["Alpha/1", "Alpha/2"]),
    ("version_number", "version_number >= 2", ["Alpha/2"]),
    ("version tag", "tags.stage = 'ok'", ["delta/1"]),
    ("version tag ILIKE", "tags.stage ILIKE 'O%'", ["delta/1"]),
    ("version tag not equal needs the tag", "tags.stage != 'no'", ["delta/1"]),
    ("one tag tested twice", "tags.stage LIKE 'o%' AND tags.stage ILIKE '%K'", ["delta/1"]),
    ("one tag tested twice, one fails", "tags.stage LIKE 'o%' AND tags.stage != 'ok'", []),
    ("a tag and an attribute", "tags.stage = 'ok' AND version_number = 1", ["delta/1"]),
]


@pytest.mark.parametrize(
    ("filter_", "expected"), [r[1:] for r in VERSION_FILTERS], ids=[r[0] for r in VERSION_FILTERS]
)
async def test_version_filters(api: Api, catalog: str, filter_: str, expected: list[str]) -> None:
    found = await version_keys(api, catalog, filter_.replace("{p}", catalog), ["name", "version_number"])
    assert found == expected


async def test_version_order(api: Api, catalog: str) -> None:
    # Default: last_updated_timestamp DESC, then name ASC, then version_number DESC.
    assert await version_keys(api, catalog) == ["Alpha/2", "delta/1", "beta/1", "Alpha/1"]
    assert await version_keys(api, catalog, order_by=["version_number DESC"]) == [
        "Alpha/2",
        "Alpha/1",
        "beta/1",
        "delta/1",
    ]
    assert await version_keys(api, catalog, order_by=["name DESC"]) == [
        "delta/1",
        "beta/1",
        "Alpha/2",
        "Alpha/1",
    ]
    assert await version_keys(api, catalog, order_by=["creation_timestamp"]) == [
        "Alpha/1",
        "beta/1",
        "delta/1",
        "Alpha/2",
    ]


async def test_deleted_versions_are_never_returned(api: Api, catalog: str) -> None:
    await delete(api, f"{MV}/delete", {"name": f"{catalog}-Alpha", "version": "2"})
    assert await version_keys(api, catalog, "name = '{p}-Alpha'".replace("{p}", catalog)) == ["Alpha/1"]
    assert await version_keys(api, catalog, f"run_id = '{R2}'") == []


async def test_version_paging(api: Api, catalog: str) -> None:
    pages = await collect_pages(
        api, f"{MV}/search", "model_versions", {"filter": f"name LIKE '{catalog}-%'", "max_results": "3"}
    )
    assert [len(p) for p in pages] == [3, 1]
    assert len({k for p in pages for k in p}) == 4


async def test_prompt_versions_are_left_out(api: Api) -> None:
    name = await new_model(api, unique("pv"))
    await new_version(api, name, tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}])
    await new_version(api, name)
    found = await api.get(f"{MV}/search", {"filter": f"name = '{name}'"})
    assert [v["version"] for v in found["model_versions"]] == ["2"]
    found = await api.get(
        f"{MV}/search", {"filter": f"name = '{name}' AND tags.`mlflow.prompt.is_prompt` = 'true'"}
    )
    assert [v["version"] for v in found["model_versions"]] == ["1"]


VERSION_ERRORS = [
    ("source_path IN", {"filter": "source_path IN ('a')"}, "Only ['name', 'run_id'] attributes support"),
    ("quoted number", {"filter": "version_number = '1'"}, "Expected numeric value type"),
    ("unknown key", {"filter": "stage = 'x'"}, "Invalid attribute key 'stage'"),
    ("order by tag", {"order_by": "tags.k"}, "Invalid entity type 'tags'"),
    ("order by source", {"order_by": "source_path"}, "Invalid attribute key 'source_path'"),
    ("duplicate order", [("order_by", "name"), ("order_by", "name DESC")], "duplicate"),
    ("too many results", {"max_results": "200001"}, "at most 200000"),
]


@pytest.mark.parametrize(
    ("params", "fragment"), [r[1:] for r in VERSION_ERRORS], ids=[r[0] for r in VERSION_ERRORS]
)
async def test_version_search_rejects(api: Api, params: Any, fragment: str) -> None:
    error = await api.get(f"{MV}/search", params, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert fragment in error["message"]
