"""Run endpoints: lifecycle, logging and search."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracking_core import validation
from tracking_core.api.routing import Endpoint
from tracking_core.api.wire import DOUBLE, ENUM, INT32, INT64, KEY_VALUE, MESSAGE, Field, page
from tracking_core.authz.state import visible
from tracking_core.entities import RUN_STATUS_NUMBERS, VIEW_TYPE_NUMBERS, LifecycleStage, RunStatus, ViewType
from tracking_core.errors import invalid
from tracking_core.identity import caller
from tracking_core.keys import stores
from tracking_core.store.run_writes import MetricPoint

USER_TAG = "mlflow.user"


def _run_id(a: dict[str, Any]) -> str:
    run_id = a["run_id"]
    if not run_id:
        raise invalid("Missing value for required parameter 'run_id'.")
    return str(run_id)


def _pairs(items: list[dict[str, Any]], max_value_length: int) -> list[tuple[str, str]]:
    """Validated (key, value) pairs of tags or params; long values are cut as MLflow does."""
    pairs = []
    for item in items:
        key = validation.key(item["key"], "key")
        value = item["value"] if item["value"] is not None else ""
        pairs.append((key, validation.truncate(value, max_value_length)))
    return pairs


def _tags(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return _pairs(items, validation.MAX_RUN_TAG_VALUE_LENGTH)


def _params(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return _pairs(items, validation.MAX_PARAM_VALUE_LENGTH)


def _metric(m: dict[str, Any]) -> MetricPoint:
    key = validation.key(m["key"], "key")
    return MetricPoint(
        key=key,
        value=validation.metric_value(key, m["value"]),
        timestamp=validation.timestamp(m["timestamp"], key),
        step=m["step"] or 0,
        model_id=m.get("model_id"),
        dataset_name=m.get("dataset_name"),
        dataset_digest=m.get("dataset_digest"),
    )


async def create(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    # MLflow's client always sends experiment_id; treating its absence as Default is the sane reading.
    experiment_id = validation.experiment_id(a["experiment_id"] if a["experiment_id"] is not None else "0")
    run_name = a["run_name"]
    validation.length(run_name, validation.MAX_RUN_NAME_LENGTH, "Run name")
    user_id, tags = a["user_id"] or "", _tags(a["tags"])
    if (who := caller(request)) is not None:
        # The authenticated subject, not what the client claims (the mlflow client sends the
        # local OS user name): runs are attributed to who really created them.
        user_id = who.subject
        tags = [(k, v) for k, v in tags if k != USER_TAG] + [(USER_TAG, who.subject)]
    run = await stores(request).runs.create(experiment_id, user_id, run_name, a["start_time"], tags)
    return {"run": run}


async def get(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    return {"run": await stores(request).runs.get(_run_id(a))}


async def update(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    run_name = a["run_name"]
    validation.length(run_name, validation.MAX_RUN_NAME_LENGTH, "Run name")
    info = await stores(request).runs.update(_run_id(a), a["status"], a["end_time"], run_name)
    return {"run_info": info}


async def delete(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).runs.set_lifecycle(_run_id(a), LifecycleStage.DELETED)
    return {}


async def restore(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).runs.set_lifecycle(_run_id(a), LifecycleStage.ACTIVE)
    return {}


async def log_metric(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).run_logs.log_batch(_run_id(a), [_metric(a)], [], [])
    return {}


async def log_param(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).run_logs.log_batch(_run_id(a), [], _params([a]), [])
    return {}


async def set_tag(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).run_logs.log_batch(_run_id(a), [], [], _tags([a]))
    return {}


async def delete_tag(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    await stores(request).run_logs.delete_tag(_run_id(a), a["key"])
    return {}


async def log_batch(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    run_id = validation.run_id(_run_id(a))
    validation.batch_sizes(len(a["metrics"]), len(a["params"]), len(a["tags"]))
    metrics = [_metric(m) for m in a["metrics"]]
    await stores(request).run_logs.log_batch(run_id, metrics, _params(a["params"]), _tags(a["tags"]))
    return {}


def _dataset_input(entry: dict[str, Any]) -> dict[str, Any]:
    ds = entry["dataset"]
    if not ds:
        raise invalid("Missing value for required parameter 'dataset'.")
    for name, limit in (("name", validation.MAX_DATASET_NAME), ("digest", validation.MAX_DATASET_DIGEST),
                        ("source_type", None), ("source", validation.MAX_DATASET_SOURCE)):
        if not ds[name]:
            raise invalid(f"Missing value for required parameter '{name}' of dataset.")
        if limit:
            validation.length(ds[name], limit, f"Dataset {name}")
    validation.length(ds["schema"], validation.MAX_DATASET_SCHEMA, "Dataset schema")
    validation.length(ds["profile"], validation.MAX_DATASET_PROFILE, "Dataset profile")
    tags = []
    for t in entry["tags"]:
        if not t["key"]:
            raise invalid("Missing value for required parameter 'key' of an input tag.")
        validation.length(t["key"], validation.MAX_INPUT_TAG_KEY, "Input tag key")
        validation.length(t["value"], validation.MAX_INPUT_TAG_VALUE, "Input tag value")
        tags.append((t["key"], t["value"] or ""))
    return {"dataset": ds, "tags": tags}


async def log_inputs(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    run_id = validation.run_id(_run_id(a))
    datasets = [_dataset_input(d) for d in a["datasets"]]
    models = [m["model_id"] for m in a["models"]]
    if any(not m for m in models):
        raise invalid("Missing value for required parameter 'model_id' of a model input.")
    if datasets or models:
        await stores(request).run_logs.log_inputs(run_id, datasets, models)
    return {}


async def log_outputs(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    run_id = validation.run_id(_run_id(a))
    models = []
    for m in a["models"]:
        if not m["model_id"] or m["step"] is None:
            raise invalid("Missing value for required parameter 'model_id' or 'step' of a model output.")
        models.append((m["model_id"], m["step"]))
    await stores(request).run_logs.log_outputs(run_id, models)
    return {}


async def search(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    max_results = validation.max_results(a["max_results"], 1000, validation.MAX_RESULTS_SEARCH_RUNS)
    experiment_ids = [validation.experiment_id(e) for e in a["experiment_ids"]]
    runs, token = await stores(request).runs.search(
        experiment_ids, a["filter"], a["run_view_type"] or ViewType.ACTIVE_ONLY, a["order_by"], max_results,
        a["page_token"], visible=await visible(request),
    )
    return page("runs", runs, token)


async def get_history(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    max_results = a["max_results"]
    if max_results is not None and max_results <= 0:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results': it must be positive.")
    points, token = await stores(request).metric_history.history(
        _run_id(a), a["metric_key"], max_results, a["page_token"]
    )
    return page("metrics", points, token)


async def get_history_bulk_interval(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    run_ids = a["run_ids"]
    if len(run_ids) > validation.MAX_RUN_IDS_BULK:
        raise invalid(f"GetMetricHistoryBulkInterval request must specify at most "
                      f"{validation.MAX_RUN_IDS_BULK} run_ids. Received {len(run_ids)} run_ids.")
    max_results = validation.max_results(
        a["max_results"], validation.MAX_RESULTS_BULK_INTERVAL, validation.MAX_RESULTS_BULK_INTERVAL
    )
    points = await stores(request).metric_history.bulk_interval(
        run_ids, a["metric_key"], a["start_step"], a["end_step"], max_results
    )
    return page("metrics", points, None)


RUN_ID = Field("run_id", alias="run_uuid")
KEY = Field("key", required=True)
TAGS = Field("tags", MESSAGE, repeated=True, fields=KEY_VALUE)
METRIC_FIELDS = (
    Field("key"),
    Field("value", DOUBLE),
    Field("timestamp", INT64),
    Field("step", INT64),
    Field("model_id"),
    Field("dataset_name"),
    Field("dataset_digest"),
)
DATASET = (
    Field("name"), Field("digest"), Field("source_type"), Field("source"), Field("schema"), Field("profile"),
)
VIEW = Field("run_view_type", ENUM, enum=ViewType, enum_numbers=VIEW_TYPE_NUMBERS)

ENDPOINTS = (
    Endpoint("runs/create", ("POST",), create, (
        Field("experiment_id"), Field("user_id"), Field("run_name"), Field("start_time", INT64), TAGS,
    )),
    Endpoint("runs/get", ("GET",), get, (RUN_ID,)),
    Endpoint("runs/update", ("POST",), update, (
        RUN_ID, Field("status", ENUM, enum=RunStatus, enum_numbers=RUN_STATUS_NUMBERS), Field("end_time", INT64),
        Field("run_name"),
    )),
    Endpoint("runs/delete", ("POST",), delete, (RUN_ID,)),
    Endpoint("runs/restore", ("POST",), restore, (RUN_ID,)),
    Endpoint("runs/log-metric", ("POST",), log_metric, (RUN_ID, *METRIC_FIELDS)),
    Endpoint("runs/log-parameter", ("POST",), log_param, (RUN_ID, KEY, Field("value"))),
    Endpoint("runs/set-tag", ("POST",), set_tag, (RUN_ID, KEY, Field("value"))),
    Endpoint("runs/delete-tag", ("POST",), delete_tag, (RUN_ID, KEY)),
    Endpoint("runs/log-batch", ("POST",), log_batch, (
        RUN_ID,
        Field("metrics", MESSAGE, repeated=True, fields=METRIC_FIELDS),
        Field("params", MESSAGE, repeated=True, fields=KEY_VALUE),
        TAGS,
    )),
    Endpoint("runs/log-inputs", ("POST",), log_inputs, (
        RUN_ID,
        Field("datasets", MESSAGE, repeated=True, fields=(
            Field("tags", MESSAGE, repeated=True, fields=KEY_VALUE), Field("dataset", MESSAGE, fields=DATASET),
        )),
        Field("models", MESSAGE, repeated=True, fields=(Field("model_id"),)),
    )),
    Endpoint("runs/outputs", ("POST",), log_outputs, (
        RUN_ID,
        Field("models", MESSAGE, repeated=True, required=True, fields=(Field("model_id"), Field("step", INT64))),
    )),
    Endpoint("runs/search", ("POST",), search, (
        Field("experiment_ids", repeated=True), Field("filter"), VIEW, Field("max_results", INT32),
        Field("order_by", repeated=True), Field("page_token"),
    )),
    Endpoint("metrics/get-history", ("GET",), get_history, (
        RUN_ID, Field("metric_key", required=True), Field("max_results", INT32), Field("page_token"),
    )),
    Endpoint("metrics/get-history-bulk-interval", ("GET",), get_history_bulk_interval, (
        Field("run_ids", repeated=True, required=True), Field("metric_key", required=True),
        Field("start_step", INT32), Field("end_step", INT32), Field("max_results", INT32),
    )),
)
