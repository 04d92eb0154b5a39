"""Registered-model endpoints (spec §3.7): lifecycle, search, tags and aliases."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracking_core import registry_validation as rules
from tracking_core import validation
from tracking_core.api.routing import Endpoint
from tracking_core.api.wire import INT64, KEY_VALUE, MESSAGE, Field, page
from tracking_core.authz.state import visible
from tracking_core.keys import stores

MAX_RESULTS_DEFAULT = 100
MAX_RESULTS_LIMIT = 1000


def _name(a: dict[str, Any]) -> str:
    return rules.model_name(a["name"])


def model_tags(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [rules.tag(t["key"], t["value"], value_required=False) for t in items]


async def create(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    # deployment_job_id is accepted and ignored: deployment jobs are a Databricks feature.
    model = await stores(request).registry.models.create(_name(a), a["description"], model_tags(a["tags"]))
    return {"registered_model": model}


async def get(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    return {"registered_model": await stores(request).registry.models.get(_name(a))}


async def rename(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    new_name = rules.model_name(a["new_name"], "new_name")
    return {"registered_model": await stores(request).registry.models.rename(_name(a), new_name)}


async def update(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    # As in MLflow, an absent description clears it (the proto default is "").
    model = await stores(request).registry.models.update(_name(a), a["description"] or "")
    return {"registered_model": model}


async def delete(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).registry.models.delete(_name(a))
    return {}


async def search(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    max_results = validation.max_results(a["max_results"], MAX_RESULTS_DEFAULT, MAX_RESULTS_LIMIT)
    found, token = await stores(request).registry.models.search(
        a["filter"], a["order_by"], max_results, a["page_token"], visible=await visible(request)
    )
    return page("registered_models", found, token)


async def get_latest_versions(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    stages = [rules.stage(s) for s in a["stages"]]
    versions = await stores(request).registry.models.latest_versions(_name(a), stages)
    return {"model_versions": versions} if versions else {}


async def set_tag(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    key, value = rules.tag(a["key"], a["value"], value_required=False)
    await stores(request).registry.models.set_tag(_name(a), key, value)
    return {}


async def delete_tag(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).registry.models.delete_tag(_name(a), validation.key(a["key"]))
    return {}


async def set_alias(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    alias = rules.new_alias(a["alias"])
    await stores(request).registry.models.set_alias(_name(a), alias, rules.version(a["version"]))
    return {}


async def delete_alias(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).registry.models.delete_alias(_name(a), rules.alias(a["alias"]))
    return {}


async def get_by_alias(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    version = await stores(request).registry.models.get_by_alias(_name(a), rules.alias(a["alias"]))
    return {"model_version": version}


NAME = Field("name", required=True)
ALIAS = Field("alias", required=True)
KEY = Field("key", required=True)
TAGS = Field("tags", MESSAGE, repeated=True, fields=KEY_VALUE)
SEARCH = (Field("filter"), Field("max_results", INT64), Field("order_by", repeated=True), Field("page_token"))

ENDPOINTS = (
    Endpoint(
        "registered-models/create",
        ("POST",),
        create,
        (NAME, TAGS, Field("description"), Field("deployment_job_id")),
    ),
    Endpoint("registered-models/get", ("GET",), get, (NAME,)),
    Endpoint("registered-models/rename", ("POST",), rename, (NAME, Field("new_name", required=True))),
    Endpoint("registered-models/update", ("PATCH",), update, (NAME, Field("description"))),
    Endpoint("registered-models/delete", ("DELETE",), delete, (NAME,)),
    Endpoint("registered-models/search", ("GET",), search, SEARCH),
    Endpoint(
        "registered-models/get-latest-versions",
        ("POST", "GET"),
        get_latest_versions,
        (NAME, Field("stages", repeated=True)),
    ),
    Endpoint("registered-models/set-tag", ("POST",), set_tag, (NAME, KEY, Field("value"))),
    Endpoint("registered-models/delete-tag", ("DELETE",), delete_tag, (NAME, KEY)),
    # One path, three methods: set, delete and resolve an alias.
    Endpoint("registered-models/alias", ("POST",), set_alias, (NAME, ALIAS, Field("version", required=True))),
    Endpoint("registered-models/alias", ("DELETE",), delete_alias, (NAME, ALIAS)),
    Endpoint("registered-models/alias", ("GET",), get_by_alias, (NAME, ALIAS)),
)
