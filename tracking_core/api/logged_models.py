"""Logged-model endpoints (MLflow 3): create, get, finalise, delete, search, tags, params."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracking_core import validation
from tracking_core.api.routing import Endpoint
from tracking_core.api.wire import BOOL, INT32, KEY_VALUE, MESSAGE, Field, page
from tracking_core.authz.state import visible
from tracking_core.errors import invalid
from tracking_core.keys import stores
from tracking_core.search.logged_models import ModelOrder
from tracking_core.store.logged_models import STATUSES

MAX_RESULTS_DEFAULT = 100
MAX_RESULTS_LIMIT = 1000


def _pairs(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(validation.key(i["key"]), i["value"] if i["value"] is not None else "") for i in items]


async def create(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    experiment_id = validation.experiment_id(a["experiment_id"])
    model = await stores(request).logged_models.create(
        experiment_id, a["name"], a["model_type"], a["source_run_id"], _pairs(a["params"]), _pairs(a["tags"])
    )
    return {"model": model}


async def get(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    return {"model": await stores(request).logged_models.get(a["model_id"])}


async def finalize(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    status = a["status"]
    if status.isdigit() and int(status) < len(STATUSES):  # the enum's number instead of its name
        status = STATUSES[int(status)]
    if status not in STATUSES[1:]:
        raise invalid(f"Invalid value for parameter 'status': expected one of {list(STATUSES[1:])}, got {status!r}.")
    return {"model": await stores(request).logged_models.finalize(a["model_id"], status)}


async def delete(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).logged_models.delete(a["model_id"])
    return {}


async def set_tags(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).logged_models.set_tags(a["model_id"], _pairs(a["tags"]))
    return {}


async def delete_tag(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).logged_models.delete_tag(a["model_id"], a["tag_key"])
    return {}


async def log_params(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).logged_models.log_params(a["model_id"], _pairs(a["params"]))
    return {}


async def search(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    experiment_ids = [validation.experiment_id(e) for e in a["experiment_ids"]]
    if not experiment_ids:
        raise invalid("Missing value for required parameter 'experiment_ids'.")
    max_results = validation.max_results(a["max_results"], MAX_RESULTS_DEFAULT, MAX_RESULTS_LIMIT)
    for d in a["datasets"]:
        if not d["dataset_name"]:
            raise invalid("Missing value for required parameter 'dataset_name' of a dataset filter.")
    order_by = [ModelOrder(o["field_name"], o["ascending"] is not False, o["dataset_name"], o["dataset_digest"])
                for o in a["order_by"]]
    if any(not o.field_name for o in order_by):
        raise invalid("Missing value for required parameter 'field_name' of an order_by entry.")
    models, token = await stores(request).logged_models.search(
        experiment_ids, a["filter"], a["datasets"], order_by, max_results, a["page_token"],
        visible=await visible(request),
    )
    return page("models", models, token)


MODEL_ID = Field("model_id", required=True)
PATH = "logged-models"
TAGS = Field("tags", MESSAGE, repeated=True, fields=KEY_VALUE)
PARAMS = Field("params", MESSAGE, repeated=True, fields=KEY_VALUE)

ENDPOINTS = (
    Endpoint(f"{PATH}/search", ("POST",), search, (
        Field("experiment_ids", repeated=True),
        Field("filter"),
        Field("datasets", MESSAGE, repeated=True, fields=(Field("dataset_name"), Field("dataset_digest"))),
        Field("max_results", INT32),
        Field("order_by", MESSAGE, repeated=True, fields=(
            Field("field_name"), Field("ascending", BOOL), Field("dataset_name"), Field("dataset_digest"),
        )),
        Field("page_token"),
    )),
    Endpoint(PATH, ("POST",), create, (
        Field("experiment_id", required=True), Field("name"), Field("model_type"), Field("source_run_id"),
        PARAMS, TAGS,
    )),
    Endpoint(f"{PATH}/{{model_id}}", ("GET",), get, (MODEL_ID,)),
    Endpoint(f"{PATH}/{{model_id}}", ("PATCH",), finalize, (MODEL_ID, Field("status", required=True))),
    Endpoint(f"{PATH}/{{model_id}}", ("DELETE",), delete, (MODEL_ID,)),
    Endpoint(f"{PATH}/{{model_id}}/tags", ("PATCH",), set_tags, (MODEL_ID, TAGS)),
    Endpoint(f"{PATH}/{{model_id}}/tags/{{tag_key}}", ("DELETE",), delete_tag, (
        MODEL_ID, Field("tag_key", required=True),
    )),
    Endpoint(f"{PATH}/{{model_id}}/params", ("POST",), log_params, (MODEL_ID, PARAMS)),
)
