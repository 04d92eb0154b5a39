"""Model-version endpoints (spec §3.7): create, read, describe, delete, search, stages, tags."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracking_core import registry_validation as rules
from tracking_core import validation
from tracking_core.api import location_checks
from tracking_core.api.routing import Endpoint
from tracking_core.api.wire import BOOL, INT64, KEY_VALUE, MESSAGE, Field, page
from tracking_core.authz.state import visible
from tracking_core.keys import CONFIG, stores

MAX_RESULTS_DEFAULT = 10_000
MAX_RESULTS_LIMIT = 200_000


def _key(a: dict[str, Any]) -> tuple[str, int]:
    return rules.model_name(a["name"]), rules.version(a["version"])


async def create(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    name = rules.model_name(a["name"])
    source = rules.source(a["source"], request.app[CONFIG].model_version_source_regex)
    validation.length(a["run_link"], rules.MAX_RUN_LINK_LENGTH, "run_link")
    tags = [rules.tag(t["key"], t["value"], value_required=True) for t in a["tags"]]
    await location_checks.version_source(request, source, a["run_id"], a["model_id"])
    version = await stores(request).registry.versions.create(
        name,
        source,
        rules.optional_run_id(a["run_id"]),
        a["run_link"],
        a["description"],
        tags,
        rules.optional_model_id(a["model_id"]),
    )
    return {"model_version": version}


async def get(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    return {"model_version": await stores(request).registry.versions.get(*_key(a))}


async def update(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    # As in MLflow, an absent description clears it (the proto default is "").
    version = await stores(request).registry.versions.update(*_key(a), a["description"] or "")
    return {"model_version": version}


async def delete(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).registry.versions.delete(*_key(a))
    return {}


async def search(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    max_results = validation.max_results(a["max_results"], MAX_RESULTS_DEFAULT, MAX_RESULTS_LIMIT)
    found, token = await stores(request).registry.versions.search(
        a["filter"], a["order_by"], max_results, a["page_token"], visible=await visible(request)
    )
    return page("model_versions", found, token)


async def transition_stage(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    name, number = _key(a)
    version = await stores(request).registry.versions.transition_stage(
        name, number, rules.stage(a["stage"]), bool(a["archive_existing_versions"])
    )
    return {"model_version": version}


async def set_tag(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    key, value = rules.tag(a["key"], a["value"], value_required=True)
    await stores(request).registry.versions.set_tag(*_key(a), key, value)
    return {}


async def delete_tag(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).registry.versions.delete_tag(*_key(a), validation.key(a["key"]))
    return {}


async def get_download_uri(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    return {"artifact_uri": await stores(request).registry.versions.download_uri(*_key(a))}


NAME = Field("name", required=True)
VERSION = Field("version", required=True)
KEY = Field("key", required=True)
CREATE = (
    NAME,
    Field("source", required=True),
    Field("run_id"),
    Field("tags", MESSAGE, repeated=True, fields=KEY_VALUE),
    Field("run_link"),
    Field("description"),
    Field("model_id"),
)
SEARCH = (Field("filter"), Field("max_results", INT64), Field("order_by", repeated=True), Field("page_token"))
TRANSITION = (NAME, VERSION, Field("stage", required=True), Field("archive_existing_versions", BOOL))

ENDPOINTS = (
    Endpoint("model-versions/create", ("POST",), create, CREATE),
    Endpoint("model-versions/get", ("GET",), get, (NAME, VERSION)),
    Endpoint("model-versions/update", ("PATCH",), update, (NAME, VERSION, Field("description"))),
    Endpoint("model-versions/delete", ("DELETE",), delete, (NAME, VERSION)),
    Endpoint("model-versions/search", ("GET",), search, SEARCH),
    Endpoint("model-versions/transition-stage", ("POST",), transition_stage, TRANSITION),
    Endpoint("model-versions/set-tag", ("POST",), set_tag, (NAME, VERSION, KEY, Field("value"))),
    Endpoint("model-versions/delete-tag", ("DELETE",), delete_tag, (NAME, VERSION, KEY)),
    Endpoint("model-versions/get-download-uri", ("GET",), get_download_uri, (NAME, VERSION)),
)
