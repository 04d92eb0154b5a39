"""Artifacts reached through tracking entities: a run's listing and the UI's download routes.

These resolve the entity's recorded artifact root first (see `ArtifactService.locate`), so
they work for proxied runs (mlflow-artifacts:) and for runs whose artifacts the client wrote
straight to S3, GCS or a shared disk (`--no-serve-artifacts`), as long as this server can read
that store too.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracking_core.api.artifact_http import send_file
from tracking_core.api.routing import Endpoint
from tracking_core.api.wire import Field
from tracking_core.artifacts import paths
from tracking_core.errors import invalid, not_found
from tracking_core.keys import ARTIFACTS, stores
from tracking_core.store.artifact_locations import run_artifact_uri


async def _run_root(request: web.Request, run_id: str | None) -> str:
    if not run_id:
        raise invalid("Missing value for required parameter 'run_id'.")
    root = await run_artifact_uri(stores(request).db, run_id)
    if root is None:
        raise not_found(f"Run with id={run_id} not found")
    return root


async def list_run_artifacts(request: web.Request, a: dict[str, Any]) -> dict[str, Any]:
    """GET /api/2.0/mlflow/artifacts/list: one level, paths relative to the run's root."""
    root = await _run_root(request, a["run_id"])
    relative = paths.clean(a["path"])
    repo, where = await request.app[ARTIFACTS].locate(root, relative)
    entries = await repo.list_dir(where) or []
    files = []
    for e in entries:
        item: dict[str, Any] = {"path": paths.join(relative, e.name), "is_dir": e.is_dir}
        if not e.is_dir:
            item["file_size"] = e.size
        files.append(item)
    out: dict[str, Any] = {"root_uri": root}
    if files:
        out["files"] = files
    return out


async def get_artifact(request: web.Request) -> web.StreamResponse:
    """GET /get-artifact?run_uuid=&path=: the web UI's download of one run file."""
    query = request.query
    root = await _run_root(request, query.get("run_id") or query.get("run_uuid"))
    relative = paths.clean(query.get("path"), allow_root=False)
    repo, where = await request.app[ARTIFACTS].locate(root, relative)
    return await send_file(request, repo, where, paths.basename(relative))


async def get_model_version_artifact(request: web.Request) -> web.StreamResponse:
    """GET /model-versions/get-artifact?name=&version=&path=: a file of a registered model version."""
    query = request.query
    name, version = query.get("name"), query.get("version", "")
    if not name or not version.strip().isdigit():
        raise invalid("Parameters 'name' and a numeric 'version' are required.")
    # The same location model-versions/get-download-uri answers (404 for an unknown version).
    root = await stores(request).registry.versions.download_uri(name, int(version))
    relative = paths.clean(query.get("path"), allow_root=False)
    repo, where = await request.app[ARTIFACTS].locate(root, relative)
    return await send_file(request, repo, where, paths.basename(relative))


ENDPOINTS = (
    Endpoint(
        "artifacts/list",
        ("GET",),
        list_run_artifacts,
        (
            Field("run_id", alias="run_uuid"),
            Field("path"),
            Field("page_token"),
        ),
    ),
)
# (path under the static prefix, handler): the UI's plain download routes, outside /api.
DOWNLOAD_ROUTES = (
    ("/get-artifact", get_artifact),
    ("/model-versions/get-artifact", get_model_version_artifact),
)


def add_routes(app: web.Application, prefix: str) -> None:
    for path, handler in DOWNLOAD_ROUTES:
        app.router.add_get(f"{prefix}{path}", handler)
