"""Models: the registry (models, a model's versions) and an experiment's logged models."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracking_core.api import experiments, logged_models, model_versions, registered_models
from tracking_core.errors import MlflowError
from tracking_core.ui.calls import call, literal
from tracking_core.ui.render import page, render

PAGE_SIZE = 50


@page
async def models_page(request: web.Request) -> web.StreamResponse:
    q = request.query.get("q", "").strip()
    token = request.query.get("page_token") or None
    found: dict[str, Any] = {}
    error = None
    try:
        found = await call(
            request, registered_models.ENDPOINTS, "registered-models/search",
            filter=f"name ILIKE {literal('%' + q + '%')}" if q else None, max_results=PAGE_SIZE, page_token=token,
            order_by=["name ASC"],
        )
    except MlflowError as exc:
        error = exc.message
    return render(request, "models.html", q=q, models=found.get("registered_models", []), page_token=token,
                  next_page_token=found.get("next_page_token"), error=error)


@page
async def model_page(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    model = (await call(request, registered_models.ENDPOINTS, "registered-models/get", name=name))["registered_model"]
    token = request.query.get("page_token") or None
    versions = await call(
        request, model_versions.ENDPOINTS, "model-versions/search", filter=f"name = {literal(name)}",
        order_by=["version_number DESC"], max_results=PAGE_SIZE, page_token=token,
    )
    aliases: dict[str, list[str]] = {}
    for a in model.get("aliases", []):
        aliases.setdefault(str(a["version"]), []).append(a["alias"])
    return render(request, "model.html", model=model, versions=versions.get("model_versions", []), aliases=aliases,
                  page_token=token, next_page_token=versions.get("next_page_token"))


@page
async def logged_models_page(request: web.Request) -> web.StreamResponse:
    experiment_id = request.match_info["experiment_id"]
    experiment = (await call(request, experiments.ENDPOINTS, "experiments/get", experiment_id=experiment_id))[
        "experiment"
    ]
    token = request.query.get("page_token") or None
    found = await call(request, logged_models.ENDPOINTS, "logged-models/search", experiment_ids=[experiment_id],
                       max_results=PAGE_SIZE, page_token=token)
    return render(request, "logged_models.html", experiment=experiment, models=found.get("models", []),
                  page_token=token, next_page_token=found.get("next_page_token"))


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(prefix + "/models", models_page)
    app.router.add_get(prefix + "/models/{name:.+}", model_page)
    app.router.add_get(prefix + "/experiments/{experiment_id}/models", logged_models_page)
