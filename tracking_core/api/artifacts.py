"""The artifact proxy service: /api/2.0/mlflow-artifacts/... and its /ajax-api mirror.

Paths are relative to `--artifacts-destination`. Uploads and downloads stream through
`artifact_http`; listing answers basenames, and `{}` for a missing path or a file, as the
mlflow client expects. Multipart upload and presigned download are offered exactly when the
destination can do them, and answered with MLflow's 501 messages (which the client matches on
to fall back to a plain PUT) when it cannot.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from tracking_core.api.artifact_http import body_chunks, send_file
from tracking_core.api.routing import json_response, read_json_body
from tracking_core.artifacts import paths
from tracking_core.artifacts.repository import ArtifactRepository, default_registry
from tracking_core.artifacts.service import ArtifactService
from tracking_core.errors import invalid
from tracking_core.keys import ARTIFACTS, CONFIG

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("trackgate.artifacts")
PRESIGNED_TTL_ENV = "MLFLOW_PRESIGNED_DOWNLOAD_URL_TTL_SECONDS"


async def artifacts_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the artifact stores (and the proxy destination) for this worker's lifetime."""
    service = await ArtifactService.open(app[CONFIG], default_registry())
    app[ARTIFACTS] = service
    try:
        yield
    finally:
        await service.close()


def _destination(request: web.Request) -> ArtifactRepository:
    destination = request.app[ARTIFACTS].destination
    assert destination is not None, "routes are only mounted while serving artifacts"
    return destination


def _path(request: web.Request) -> str:
    raw = request.match_info.get("path", "")
    if raw.endswith("/"):
        raise invalid(paths.INVALID_PATH)  # an upload or download names a file
    return paths.clean(raw, allow_root=False)


async def upload(request: web.Request) -> web.Response:
    path = _path(request)
    ctype = request.headers.get("Content-Type")
    try:
        await _destination(request).upload(path, body_chunks(request), ctype)
    except ConnectionError:
        # The client went away mid-body: the repository already discarded the partial upload.
        # Routine on flaky links, so no traceback; nobody is left to read this answer.
        log.info("upload of %s interrupted by the client", path)
        raise invalid("Upload interrupted: the request body ended early.") from None
    return web.Response(status=200)


async def download(request: web.Request) -> web.StreamResponse:
    path = _path(request)
    return await send_file(request, _destination(request), path, paths.basename(path))


async def list_artifacts(request: web.Request) -> web.Response:
    path = paths.clean(request.query.get("path"))
    entries = await _destination(request).list_dir(path)
    if not entries:
        return json_response({})
    files = [
        {"path": e.name, "is_dir": True}
        if e.is_dir
        else {"path": e.name, "is_dir": False, "file_size": e.size}
        for e in entries
    ]
    return json_response({"files": files})


async def delete(request: web.Request) -> web.Response:
    # Deleting the whole destination is never what a client means; MLflow's gc deletes runs.
    await _destination(request).delete(paths.clean(request.match_info.get("path", ""), allow_root=False))
    return json_response({})


async def _mpu_target(request: web.Request) -> tuple[str, dict[str, Any]]:
    """The object a multipart call is about, and the JSON body.

    The client puts the artifact *directory* in the URL and its local file path in the body
    (`path`); the object is that directory plus the file's basename, as in MLflow's server.
    """
    body = await read_json_body(request)
    local = body.get("path")
    if not local or not isinstance(local, str):
        raise invalid("Missing value for required parameter 'path'.")
    name = re.split(r"[\\/]", local.rstrip("/\\"))[-1]  # a Windows client sends backslashes
    directory = paths.clean(request.match_info.get("path", ""))
    return paths.join(directory, paths.clean(name, allow_root=False)), body


async def mpu_create(request: web.Request) -> web.Response:
    path, body = await _mpu_target(request)
    try:
        num_parts = int(body.get("num_parts") or 1)
    except (TypeError, ValueError):
        raise invalid("num_parts must be an integer.") from None
    created = await _destination(request).create_multipart(path, num_parts)
    credentials = [
        {"url": c.url, "part_number": c.part_number, "headers": c.headers} for c in created.credentials
    ]
    return json_response({"upload_id": created.upload_id, "credentials": credentials})


async def mpu_complete(request: web.Request) -> web.Response:
    path, body = await _mpu_target(request)
    upload_id = body.get("upload_id")
    parts = body.get("parts")
    if not upload_id or not isinstance(parts, list) or not parts:
        raise invalid("mpu/complete needs upload_id and a non-empty parts list.")
    try:
        numbered = [(int(p["part_number"]), str(p["etag"])) for p in parts]
    except (KeyError, TypeError, ValueError):
        raise invalid("Every part needs part_number and etag.") from None
    await _destination(request).complete_multipart(path, str(upload_id), numbered)
    return json_response({})


async def mpu_abort(request: web.Request) -> web.Response:
    path, body = await _mpu_target(request)
    if not body.get("upload_id"):
        raise invalid("Missing value for required parameter 'upload_id'.")
    await _destination(request).abort_multipart(path, str(body["upload_id"]))
    return json_response({})


async def presigned(request: web.Request) -> web.Response:
    path = _path(request)
    ttl = int(os.environ.get(PRESIGNED_TTL_ENV) or 300)
    signed = await _destination(request).presign_download(path, ttl)
    return json_response({"url": signed.url, "headers": signed.headers, "file_size": signed.size})


# (method, path under /<root>/2.0/mlflow-artifacts, handler, the rule MLflow's message shows)
ROUTES: tuple[tuple[str, str, Handler, str], ...] = (
    ("PUT", "/artifacts/{path:.+}", upload, "/artifacts/{artifact_path}"),
    ("GET", "/artifacts/{path:.+}", download, "/artifacts/{artifact_path}"),
    ("GET", "/artifacts", list_artifacts, "/artifacts"),
    ("DELETE", "/artifacts/{path:.*}", delete, "/artifacts/<path:artifact_path>"),
    ("POST", "/mpu/create/{path:.*}", mpu_create, "/mpu/create/<path:path>"),
    ("POST", "/mpu/complete/{path:.*}", mpu_complete, "/mpu/complete/<path:path>"),
    ("POST", "/mpu/abort/{path:.*}", mpu_abort, "/mpu/abort/<path:path>"),
    ("GET", "/presigned/{path:.+}", presigned, "/presigned/<path:path>"),
)


def _serving_disabled(root: str, rule: str) -> Handler:
    """MLflow's 503 answers under --no-serve-artifacts: JSON for the streaming GET/PUT routes,
    the Flask text for the rest (reference §3.5)."""

    async def handler(_request: web.Request) -> web.Response:
        if "{artifact_path}" in rule:
            detail = "Artifact serving is disabled. Run `mlflow server` with `--serve-artifacts` to enable."
            return json_response({"detail": detail}, status=503)
        text = (
            f"Endpoint: /{root}/2.0/mlflow-artifacts{rule} disabled due to the mlflow server running with "
            "`--no-serve-artifacts`. To enable artifacts server functionality, run `mlflow server` with "
            "`--serve-artifacts`"
        )
        return web.Response(status=503, text=text, content_type="text/html")

    return handler


def add_routes(app: web.Application, prefix: str, serving: bool) -> None:
    for root in ("api", "ajax-api"):
        for method, path, handler, rule in ROUTES:
            target = handler if serving else _serving_disabled(root, rule)
            # HEAD is answered by the GET handlers (send_file sends headers only).
            app.router.add_route(method, f"{prefix}/{root}/2.0/mlflow-artifacts{path}", target)
            if method == "GET":
                app.router.add_route("HEAD", f"{prefix}/{root}/2.0/mlflow-artifacts{path}", target)
