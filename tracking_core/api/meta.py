"""Server-level routes: liveness, version, capabilities, and the gateway's readiness probe."""

from __future__ import annotations

from aiohttp import web

from tracking_core.api.routing import json_response
from tracking_core.contract import ALIVE_PATH, MLFLOW_API_VERSION, PACKAGE_VERSION, READY_PATH
from tracking_core.keys import ARTIFACTS, CONFIG, STORES


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def version(_request: web.Request) -> web.Response:
    return web.Response(text=MLFLOW_API_VERSION)


async def server_info(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    # Advertised only when the operator says clients can reach the object store and the destination
    # can really do it: the client then sends parts / fetches every file straight from the store
    # with presigned URLs (reference §12.15). A client that cannot reach the bucket would fail.
    service = request.app.get(ARTIFACTS)
    direct = config.direct_artifact_transfers and service and service.destination
    capabilities = service.destination.capabilities if direct else None
    return json_response({
        "store_type": None if config.artifacts_only else "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": bool(capabilities and capabilities.multipart_upload),
        "multipart_downloads_enabled": bool(capabilities and capabilities.presigned_download),
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {},
        "trackgate_version": PACKAGE_VERSION,
    })


async def ready(request: web.Request) -> web.Response:
    """Ready when the database answers; the gateway's /readyz relies on this."""
    stores = request.app.get(STORES)
    if stores is not None:
        await stores.db.ping()
        if stores.registry.owns_db:
            await stores.registry.db.ping()
    return json_response({"status": "ok"})


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(READY_PATH, ready)
    app.router.add_get(ALIVE_PATH, health)
    app.router.add_get(f"{prefix}/health", health)
    app.router.add_get(f"{prefix}/version", version)
    for root in ("api", "ajax-api"):
        app.router.add_get(f"{prefix}/{root}/3.0/mlflow/server-info", server_info)
