"""The experiments list (`/`) and its create / rename / delete / restore forms."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracking_core.api.experiments import ENDPOINTS
from tracking_core.errors import MlflowError
from tracking_core.keys import CONFIG
from tracking_core.ui.calls import VIEWS, call, literal
from tracking_core.ui.guard import require_same_origin
from tracking_core.ui.render import page, render

PAGE_SIZE = 50


def _name_filter(text: str) -> str | None:
    text = text.strip()
    return f"name ILIKE {literal('%' + text + '%')}" if text else None


async def _listing(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    q = request.query.get("q", "")
    view = request.query.get("view", "active")
    if view not in VIEWS:
        view = "active"
    token = request.query.get("page_token") or None
    found: dict[str, Any] = {}
    search_error = None
    try:
        found = await call(
            request, ENDPOINTS, "experiments/search", filter=_name_filter(q), view_type=VIEWS[view],
            order_by=["last_update_time DESC"], max_results=PAGE_SIZE, page_token=token,
        )
    except MlflowError as exc:
        search_error = exc.message
    return render(
        request, "experiments.html", status=status, q=q, view=view, experiments=found.get("experiments", []),
        next_page_token=found.get("next_page_token"), page_token=token, error=error, search_error=search_error,
    )


@page
async def experiments_page(request: web.Request) -> web.StreamResponse:
    return await _listing(request)


async def _act(request: web.Request, path: str, **body: Any) -> web.StreamResponse:
    require_same_origin(request)
    try:
        result = await call(request, ENDPOINTS, path, **body)
    except MlflowError as exc:
        return await _listing(request, error=exc.message, status=exc.status)
    base = request.app[CONFIG].static_prefix
    experiment_id = result.get("experiment_id") or body.get("experiment_id")
    target = f"{base}/experiments/{experiment_id}" if path == "experiments/create" else f"{base}/"
    raise web.HTTPSeeOther(target)


async def create(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    return await _act(request, "experiments/create", name=str(form.get("name", "")).strip())


async def rename(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    return await _act(
        request, "experiments/update", experiment_id=request.match_info["experiment_id"],
        new_name=str(form.get("new_name", "")).strip(),
    )


async def delete(request: web.Request) -> web.StreamResponse:
    return await _act(request, "experiments/delete", experiment_id=request.match_info["experiment_id"])


async def restore(request: web.Request) -> web.StreamResponse:
    return await _act(request, "experiments/restore", experiment_id=request.match_info["experiment_id"])


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(prefix + "/", experiments_page)
    app.router.add_post(prefix + "/experiments/create", create)
    app.router.add_post(prefix + "/experiments/{experiment_id}/rename", rename)
    app.router.add_post(prefix + "/experiments/{experiment_id}/delete", delete)
    app.router.add_post(prefix + "/experiments/{experiment_id}/restore", restore)
