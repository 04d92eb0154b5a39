"""Experiment endpoints."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracking_core import validation
from tracking_core.api import location_checks
from tracking_core.api.routing import Endpoint
from tracking_core.api.wire import ENUM, INT64, KEY_VALUE, MESSAGE, Field, page
from tracking_core.authz.state import visible
from tracking_core.entities import VIEW_TYPE_NUMBERS, LifecycleStage, ViewType
from tracking_core.errors import invalid
from tracking_core.keys import stores


async def create(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    name = validation.experiment_name(a["name"])
    location = a["artifact_location"]
    if location:
        validation.length(location, validation.MAX_ARTIFACT_LOCATION_LENGTH, "artifact_location")
        if location.startswith("runs:"):
            raise invalid(f"Artifact location cannot be a runs:/ URI. Given: '{location}'")
        location_checks.experiment_location(request, location)
    tags = [(validation.key(t["key"]), t["value"] or "") for t in a["tags"]]
    for _, value in tags:
        validation.length(value, validation.MAX_EXPERIMENT_TAG_VALUE_LENGTH, "Experiment tag value")
    experiment_id = await stores(request).experiments.create(name, location, tags)
    return {"experiment_id": experiment_id}


async def get(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    experiment = await stores(request).experiments.get(validation.experiment_id(a["experiment_id"]))
    return {"experiment": experiment}


async def get_by_name(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    return {"experiment": await stores(request).experiments.get_by_name(a["experiment_name"])}


async def search(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    max_results = validation.max_results(
        a["max_results"], 0, validation.MAX_RESULTS_SEARCH_EXPERIMENTS, required=True
    )
    found, token = await stores(request).experiments.search(
        a["filter"], a["view_type"] or ViewType.ACTIVE_ONLY, a["order_by"], max_results, a["page_token"],
        visible=await visible(request),
    )
    return page("experiments", found, token)


async def update(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    new_name = validation.experiment_name(a["new_name"])
    await stores(request).experiments.rename(validation.experiment_id(a["experiment_id"]), new_name)
    return {}


async def delete(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    experiment_id = validation.experiment_id(a["experiment_id"])
    await stores(request).experiments.set_lifecycle(experiment_id, LifecycleStage.DELETED)
    return {}


async def restore(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    experiment_id = validation.experiment_id(a["experiment_id"])
    await stores(request).experiments.set_lifecycle(experiment_id, LifecycleStage.ACTIVE)
    return {}


async def set_tag(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    key = validation.key(a["key"])
    value = a["value"] or ""
    validation.length(value, validation.MAX_EXPERIMENT_TAG_VALUE_LENGTH, "Experiment tag value")
    await stores(request).experiments.set_tag(validation.experiment_id(a["experiment_id"]), key, value)
    return {}


async def delete_tag(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).experiments.delete_tag(validation.experiment_id(a["experiment_id"]), a["key"])
    return {}


EXPERIMENT_ID = Field("experiment_id", required=True)
VIEW_TYPE = Field("view_type", ENUM, enum=ViewType, enum_numbers=VIEW_TYPE_NUMBERS)
SEARCH_FIELDS = (
    Field("max_results", INT64),
    Field("page_token"),
    Field("filter"),
    Field("order_by", repeated=True),
    VIEW_TYPE,
)

ENDPOINTS = (
    Endpoint("experiments/create", ("POST",), create, (
        Field("name", required=True),
        Field("artifact_location"),
        Field("tags", MESSAGE, repeated=True, fields=KEY_VALUE),
    )),
    Endpoint("experiments/get", ("GET",), get, (EXPERIMENT_ID,)),
    Endpoint("experiments/get-by-name", ("GET",), get_by_name, (Field("experiment_name", required=True),)),
    Endpoint("experiments/search", ("POST", "GET"), search, SEARCH_FIELDS),
    Endpoint("experiments/update", ("POST",), update, (EXPERIMENT_ID, Field("new_name", required=True))),
    Endpoint("experiments/delete", ("POST",), delete, (EXPERIMENT_ID,)),
    Endpoint("experiments/restore", ("POST",), restore, (EXPERIMENT_ID,)),
    Endpoint("experiments/set-experiment-tag", ("POST",), set_tag, (
        EXPERIMENT_ID, Field("key", required=True), Field("value"),
    )),
    Endpoint("experiments/delete-experiment-tag", ("POST",), delete_tag, (EXPERIMENT_ID, Field("key", required=True))),
)
