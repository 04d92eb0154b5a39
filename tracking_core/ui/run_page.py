"""A run: params, latest metrics, tags, datasets, lineage, metric charts and the artifact browser.

`/runs/{run_id}?dir=model&file=model/MLmodel&metric=loss&metric=acc`
"""

from __future__ import annotations

from aiohttp import web

from tracking_core.api import experiments, logged_models, runs
from tracking_core.artifacts import paths
from tracking_core.errors import MlflowError
from tracking_core.ui import artifacts
from tracking_core.ui.calls import call, literal
from tracking_core.ui.render import page, render
from tracking_core.ui.runs_table import PARENT_TAG

CHILDREN_SHOWN = 100
LOGGED_MODELS_SHOWN = 100


@page
async def run_page(request: web.Request) -> web.StreamResponse:
    run_id = request.match_info["run_id"]
    run = (await call(request, runs.ENDPOINTS, "runs/get", run_id=run_id))["run"]
    info, data = run["info"], run.get("data", {})
    experiment = (await call(request, experiments.ENDPOINTS, "experiments/get",
                             experiment_id=info["experiment_id"]))["experiment"]
    tags = {t["key"]: t["value"] for t in data.get("tags", [])}
    children = (await call(
        request, runs.ENDPOINTS, "runs/search", experiment_ids=[info["experiment_id"]],
        filter=f"tags.`{PARENT_TAG}` = {literal(run_id)}", max_results=CHILDREN_SHOWN,
        order_by=["attributes.start_time ASC"],
    )).get("runs", [])
    logged = (await call(
        request, logged_models.ENDPOINTS, "logged-models/search", experiment_ids=[info["experiment_id"]],
        filter=f"source_run_id = {literal(run_id)}", max_results=LOGGED_MODELS_SHOWN,
    )).get("models", [])
    directory = paths.clean(request.query.get("dir"))
    selected = request.query.get("file")
    shown, artifacts_error = None, None
    try:  # the run stays readable when its artifacts are not (e.g. a location outside the roots)
        listed = await artifacts.listing(request, run_id, directory)
        if selected:
            selected = paths.clean(selected, allow_root=False)
            shown = await artifacts.preview(request, listed["root_uri"], selected)
    except MlflowError as exc:
        listed, artifacts_error = {}, exc.message
    metric_keys = [m["key"] for m in data.get("metrics", [])]
    chosen = [k for k in request.query.getall("metric", []) if k in metric_keys] or metric_keys[:1]
    return render(
        request, "run.html", run=run, info=info, params=data.get("params", []), metrics=data.get("metrics", []),
        tags=[t for t in data.get("tags", []) if not t["key"].startswith("mlflow.")],
        system_tags=[t for t in data.get("tags", []) if t["key"].startswith("mlflow.")],
        parent=tags.get(PARENT_TAG), children=children, experiment=experiment,
        datasets=run.get("inputs", {}).get("dataset_inputs", []),
        model_inputs=run.get("inputs", {}).get("model_inputs", []),
        model_outputs=run.get("outputs", {}).get("model_outputs", []), logged_models=logged,
        directory=directory, files=listed.get("files", []), shown=shown, artifacts_error=artifacts_error,
        metric_keys=metric_keys, chosen=chosen,
        crumbs=_crumbs(directory),
    )


def _crumbs(directory: str) -> list[tuple[str, str]]:
    out, acc = [("artifacts", "")], []
    for part in directory.split("/") if directory else []:
        acc.append(part)
        out.append((part, "/".join(acc)))
    return out


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(prefix + "/runs/{run_id}", run_page)
