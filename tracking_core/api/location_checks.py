"""Artifact locations a request asks the server to record, checked before anything is written.

The handlers call these with what the client sent; the rules themselves live in
`tracking_core.artifacts.confine` (where the server may read and write) and
`tracking_core.artifacts.version_sources` (which model-version sources MLflow refuses).
"""

from __future__ import annotations

from aiohttp import web

from tracking_core.artifacts import version_sources
from tracking_core.keys import ARTIFACTS, stores
from tracking_core.store.artifact_locations import logged_model_artifact_uri, run_artifact_uri


def experiment_location(request: web.Request, location: str) -> None:
    """An experiment's artifact_location must be somewhere the server will later read."""
    request.app[ARTIFACTS].confinement.check_new_location(location, "artifact_location")


async def version_source(request: web.Request, source: str, run_id: str | None, model_id: str | None) -> None:
    db = stores(request).db

    async def run_root(run: str) -> str | None:
        return await run_artifact_uri(db, run)

    async def model_root(model: str) -> str | None:
        return await logged_model_artifact_uri(db, model)

    await version_sources.check(source, run_id, model_id, request.app[ARTIFACTS].confinement, run_root, model_root)
