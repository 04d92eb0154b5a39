"""Model versions (spec §3.7): numbering, tombstones, stages, tags, on every backend."""

from __future__ import annotations

import asyncio
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


async def test_create_answers_a_ready_version(api: Api) -> None:
    name = await new_model(api)
    before = await get_model(api, name)
    version = await new_version(api, name, "s3://bucket/churn/1", tags=[{"key": "k", "value": "v"}])
    assert version == {
        "name": name,
        "version": "1",
        "creation_timestamp": version["creation_timestamp"],
        "last_updated_timestamp": version["creation_timestamp"],
        "current_stage": "None",
        "description": "",
        "source": "s3://bucket/churn/1",
        "status": "READY",
        "run_link": "",
        "tags": [{"key": "k", "value": "v"}],
    }
    assert await get_version(api, name, "1") == version
    assert (await get_model(api, name))["last_updated_timestamp"] >= before["last_updated_timestamp"]
    full = await new_version(api, name, run_link="http://ui/run", description="second")
    assert (full["version"], full["run_link"], full["description"]) == ("2", "http://ui/run", "second")


async def test_version_numbers_are_never_reused(api: Api) -> None:
    name = await new_model(api)
    assert [(await new_version(api, name))["version"] for _ in range(3)] == ["1", "2", "3"]
    await delete(api, f"{MV}/delete", {"name": name, "version": "3"})
    assert (await new_version(api, name))["version"] == "4"
    await delete(api, f"{MV}/delete", {"name": name, "version": "4"})
    await delete(api, f"{MV}/delete", {"name": name, "version": "2"})
    assert (await new_version(api, name))["version"] == "5"
    live = await api.get(f"{MV}/search", {"filter": f"name = '{name}'", "order_by": "version_number ASC"})
    assert [v["version"] for v in live["model_versions"]] == ["1", "5"]


async def test_concurrent_creates_get_distinct_numbers(api: Api) -> None:
    name = await new_model(api)
    created = await asyncio.gather(*(new_version(api, name, f"s3://b/{i}") for i in range(8)))
    assert sorted(int(v["version"]) for v in created) == list(range(1, 9))


async def test_unknown_or_malformed_versions(api: Api) -> None:
    name = await new_model(api)
    await new_version(api, name)
    for method, path, extra in [
        ("GET", f"{MV}/get", {}),
        ("GET", f"{MV}/get-download-uri", {}),
        ("PATCH", f"{MV}/update", {"description": "x"}),
        ("DELETE", f"{MV}/delete", {}),
        ("POST", f"{MV}/transition-stage", {"stage": "Staging"}),
        ("POST", f"{MV}/set-tag", {"key": "k", "value": "v"}),
        ("DELETE", f"{MV}/delete-tag", {"key": "k"}),
    ]:
        for version, status, message in [
            ("7", 404, f"Model Version (name={name}, version=7) not found"),
            ("x", 400, "Parameter 'version' must be an integer, got 'x'."),
        ]:
            body = {"name": name, "version": version, **extra}
            if method == "GET":
                error = await api.call(method, path, params=body, expect=status)
            else:
                error = await api.call(method, path, body, expect=status)
            assert error["message"] == message, (method, path)


async def test_update_description(api: Api) -> None:
    name = await new_model(api)
    await new_version(api, name)
    updated = await patch(api, f"{MV}/update", {"name": name, "version": "1", "description": "better"})
    assert updated["model_version"]["description"] == "better"
    assert (await get_version(api, name, 1))["description"] == "better"


async def test_delete_leaves_a_tombstone_and_drops_its_aliases(api: Api) -> None:
    name = await new_model(api)
    await new_version(api, name)
    await new_version(api, name, tags=[{"key": "k", "value": "v"}])
    await api.post(f"{RM}/alias", {"name": name, "alias": "prod", "version": "2"})
    assert await delete(api, f"{MV}/delete", {"name": name, "version": "2"}) == {}
    await api.get(f"{MV}/get", {"name": name, "version": "2"}, expect=404)
    await delete(api, f"{MV}/delete", {"name": name, "version": "2"}, expect=404)
    await api.get(f"{RM}/alias", {"name": name, "alias": "prod"}, expect=400)
    model = await get_model(api, name)
    assert "aliases" not in model
    assert [v["version"] for v in model["latest_versions"]] == ["1"]
    assert (await api.get(f"{RM}/alias", {"name": name, "alias": "latest"}))["model_version"][
        "version"
    ] == "1"


async def test_transition_stage(api: Api) -> None:
    name = await new_model(api)
    for _ in range(4):
        await new_version(api, name)
    moved = await api.post(f"{MV}/transition-stage", {"name": name, "version": "1", "stage": "pRoDuCtIoN"})
    assert moved["model_version"]["current_stage"] == "Production"
    await api.post(f"{MV}/transition-stage", {"name": name, "version": "2", "stage": "Staging"})
    await api.post(f"{MV}/transition-stage", {"name": name, "version": "3", "stage": "Production"})
    answer = await api.post(
        f"{MV}/transition-stage",
        {"name": name, "version": "4", "stage": "production", "archive_existing_versions": True},
    )
    assert answer["model_version"]["current_stage"] == "Production"
    stages = {v: (await get_version(api, name, v))["current_stage"] for v in "1234"}
    # Only the versions in the target stage are archived; Staging is left alone.
    assert stages == {"1": "Archived", "2": "Staging", "3": "Archived", "4": "Production"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"stage": "Prod"}, "Invalid Model Version stage: Prod."),
        ({"stage": "Archived", "archive_existing_versions": True}, "'Archived' is not an Active stage"),
        ({"stage": "None", "archive_existing_versions": True}, "'None' is not an Active stage"),
        ({}, "Missing value for required parameter 'stage'"),
    ],
    ids=["unknown stage", "archive into Archived", "archive into None", "missing stage"],
)
async def test_transition_stage_rejects(api: Api, body: dict[str, Any], message: str) -> None:
    name = await new_model(api)
    await new_version(api, name)
    error = await api.post(f"{MV}/transition-stage", {"name": name, "version": "1", **body}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in error["message"]


async def test_version_tags(api: Api) -> None:
    name = await new_model(api)
    await new_version(api, name)
    await api.post(f"{MV}/set-tag", {"name": name, "version": "1", "key": "b", "value": "1"})
    await api.post(f"{MV}/set-tag", {"name": name, "version": "1", "key": "a", "value": ""})
    await api.post(f"{MV}/set-tag", {"name": name, "version": "1", "key": "b", "value": "2"})
    assert (await get_version(api, name, 1))["tags"] == [
        {"key": "a", "value": ""},
        {"key": "b", "value": "2"},
    ]
    await delete(api, f"{MV}/delete-tag", {"name": name, "version": "1", "key": "b"})
    await delete(api, f"{MV}/delete-tag", {"name": name, "version": "1", "key": "never-set"})
    assert (await get_version(api, name, 1))["tags"] == [{"key": "a", "value": ""}]
    error = await api.post(f"{MV}/set-tag", {"name": name, "version": "1", "key": "k"}, expect=400)
    assert "cannot be null" in error["message"]


BAD_CREATES = [
    ("missing source", {}, "Missing value for required parameter 'source'"),
    ("null tag value", {"source": "s3://b/m", "tags": [{"key": "k"}]}, "cannot be null"),
    ("bad run id", {"source": "s3://b/m", "run_id": "r" * 33}, "run_id exceeds the maximum length of 32"),
    (
        "run id chars",
        {"source": "s3://b/m", "run_id": "../x"},
        "Invalid value \"../x\" for parameter 'run_id'",
    ),
    ("long source", {"source": "s3://b/" + "m" * 2048}, "exceeds the maximum length of 2048"),
]


@pytest.mark.parametrize(("body", "message"), [r[1:] for r in BAD_CREATES], ids=[r[0] for r in BAD_CREATES])
async def test_create_rejects(api: Api, body: dict[str, Any], message: str) -> None:
    name = await new_model(api)
    error = await api.post(f"{MV}/create", {"name": name, **body}, expect=400)
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in error["message"]


async def test_download_uri_of_a_plain_source(api: Api) -> None:
    name = await new_model(api)
    await new_version(api, name, "s3://bucket/path/model")
    answer = await api.get(f"{MV}/get-download-uri", {"name": name, "version": "1"})
    assert answer == {"artifact_uri": "s3://bucket/path/model"}


async def test_unknown_model_for_version_reads(api: Api) -> None:
    name = unique("missing")
    error = await api.get(f"{MV}/get", {"name": name, "version": "1"}, expect=404)
    assert error["message"] == f"Registered Model with name={name} not found"


AWKWARD = [
    {"key": "quote", "value": 'say "hi"'},
    {"key": "backslash", "value": "C:\\path\\to"},
    {"key": "newline", "value": "a\nb\tc"},
    {"key": "unicode", "value": "ünïcødé ✓"},
    {"key": "json-looking", "value": '{"a": [1, 2]}'},
    {"key": "empty", "value": ""},
]


async def test_tag_values_come_back_byte_for_byte(api: Api) -> None:
    name = await new_model(api, tags=AWKWARD)
    await new_version(api, name, tags=AWKWARD)
    expected = sorted(AWKWARD, key=lambda t: t["key"])
    assert (await get_version(api, name, 1))["tags"] == expected
    model = (await api.get(f"{RM}/search", {"filter": f"name = '{name}'"}))["registered_models"][0]
    assert model["tags"] == expected and model["latest_versions"][0]["tags"] == expected


async def test_tags_past_the_aggregate_limit_are_read_directly(api: Api) -> None:
    """Over 1 MiB of tags on one version: MariaDB's JSON_ARRAYAGG stops at group_concat_max_len."""
    name = await new_model(api)
    tags = [{"key": f"big-{i:02d}", "value": chr(ord("a") + i) * 100_000} for i in range(11)]
    await new_version(api, name, tags=tags)
    assert (await get_version(api, name, 1))["tags"] == tags


async def test_backends_without_the_json_aggregate_read_tags_directly(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracking_core.store import json_agg

    name = await new_model(api, tags=[{"key": "m", "value": "1"}])
    await new_version(api, name, tags=[{"key": "v", "value": "2"}])
    monkeypatch.setattr(json_agg, "SUPPORTED", frozenset())
    model = (await api.get(f"{RM}/search", {"filter": f"name = '{name}'"}))["registered_models"][0]
    assert model["tags"] == [{"key": "m", "value": "1"}]
    assert model["latest_versions"][0]["tags"] == [{"key": "v", "value": "2"}]
