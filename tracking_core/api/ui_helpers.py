"""The helper endpoints `mlflow server` serves for its own web UI, under /ajax-api only.

- metrics/get-history-bulk: full histories of one metric for up to 100 runs, points named by run
- experiments/search-datasets: the datasets the runs of up to 20 experiments used
- upload-artifact: a small file (<= 10 MB, raw body) written into a run's artifact root
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from tracking_core import validation
from tracking_core.api import run_artifacts
from tracking_core.api.routing import GUARD, Endpoint, json_response
from tracking_core.api.wire import INT32, Field
from tracking_core.artifacts import paths
from tracking_core.errors import ErrorCode, MlflowError, invalid
from tracking_core.keys import ARTIFACTS, stores
from tracking_core.store.dataset_summaries import dataset_summaries

MAX_HISTORY_RESULTS = 25000
MAX_EXPERIMENT_IDS = 20
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def _ids(ids: list[str], rpc: str, name: str, limit: int) -> list[str]:
    """`ids`, refused (as MLflow words it) when empty or more than `limit`."""
    if not ids:
        raise invalid(f"{rpc} request must specify at least one {name}.")
    if len(ids) > limit:
        raise invalid(f"{rpc} request cannot specify more than {limit} {name}s. Received {len(ids)} {name}s.")
    return ids


async def get_history_bulk(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    run_ids = _ids(a["run_id"], "GetMetricHistoryBulk", "run_id", validation.MAX_RUN_IDS_BULK)
    key = a["metric_key"]
    if key is None:
        raise invalid("GetMetricHistoryBulk request must specify a metric_key.")
    max_results = min(a["max_results"] or MAX_HISTORY_RESULTS, MAX_HISTORY_RESULTS)
    if max_results <= 0:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results': it must be positive.")
    points: list[dict[str, Any]] = []
    for run_id in sorted(set(run_ids)):
        history, _ = await stores(request).metric_history.history(run_id, key, max_results, None)
        points.extend({**p, "run_id": run_id} for p in history)
    return {"metrics": points} if points else {}


async def search_datasets(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    ids = _ids(a["experiment_ids"], "SearchDatasets", "experiment_id", MAX_EXPERIMENT_IDS)
    found = await dataset_summaries(stores(request).db, [validation.experiment_id(e) for e in ids])
    return {"dataset_summaries": found} if found else {}


async def upload_artifact(request: web.Request) -> web.StreamResponse:
    """POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=&path=, the file as the raw body."""
    if GUARD in request.app and not _has_path_rule():
        # Authorization is on but knows no rule for this route yet: refuse, never write unchecked.
        raise MlflowError(ErrorCode.PERMISSION_DENIED, "upload-artifact is not available with authorization on.")
    run_id = request.query.get("run_uuid")
    if not run_id:
        raise invalid("Request must specify run_uuid.")
    if not request.query.get("path"):
        raise invalid("Request must specify path.")
    relative = paths.clean(request.query["path"], allow_root=False)
    if (request.content_length or 0) > MAX_UPLOAD_BYTES:
        raise invalid("Artifact size is too large. Max size is 10MB.")
    data = await request.content.read(MAX_UPLOAD_BYTES + 1)
    if not data:
        raise invalid("Request must specify data.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise invalid("Artifact size is too large. Max size is 10MB.")
    # The run must exist and be readable by the caller: the same lookup the listing endpoint does.
    listed = await run_artifacts.list_run_artifacts(request, {"run_id": run_id, "path": None, "page_token": None})
    repo, where = await request.app[ARTIFACTS].locate(listed["root_uri"], relative)

    async def body() -> AsyncIterator[bytes]:
        yield data

    await repo.upload(where, body())
    return json_response({})


def _has_path_rule() -> bool:
    from tracking_core.authz.paths import PATH_RULES  # only when authorization is on

    return upload_artifact in PATH_RULES


ENDPOINTS = (
    Endpoint("metrics/get-history-bulk", ("GET",), get_history_bulk, (
        Field("run_id", repeated=True), Field("metric_key"), Field("max_results", INT32),
    ), ajax_only=True),
    Endpoint("experiments/search-datasets", ("POST",), search_datasets, (
        Field("experiment_ids", repeated=True),
    ), ajax_only=True),
)
UPLOAD_PATH = "/ajax-api/2.0/mlflow/upload-artifact"


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(prefix + UPLOAD_PATH, upload_artifact)
