"""Builds the tracking core's aiohttp application."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from tracking_core import identity, middleware, replica, ui
from tracking_core.api import (
    artifacts,
    artifacts_only,
    experiments,
    graphql_api,
    logged_models,
    meta,
    openapi,
    run_artifacts,
    runs,
    ui_helpers,
)
from tracking_core.api.model_registry import ENDPOINTS as REGISTRY_ENDPOINTS
from tracking_core.api.routing import GUARD, add_endpoints
from tracking_core.authz import guard as authz
from tracking_core.authz.routes import AUTH_ENDPOINTS
from tracking_core.keys import CONFIG, STORES, Stores
from tracking_core.settings import CoreSettings
from tracking_core.store.database import open_database
from tracking_core.store.experiments import ExperimentStore
from tracking_core.store.logged_models import LoggedModelStore
from tracking_core.store.metric_history import MetricHistoryStore
from tracking_core.store.model_registry import open_registry
from tracking_core.store.run_writes import RunLogStore
from tracking_core.store.runs import RunStore

TRACKING_ENDPOINTS = (
    *experiments.ENDPOINTS, *runs.ENDPOINTS, *logged_models.ENDPOINTS, *run_artifacts.ENDPOINTS,
    *REGISTRY_ENDPOINTS, *ui_helpers.ENDPOINTS,
)


async def _stores_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    db = open_database(config, replica=replica.open_engine(config))
    # Its own engine only when --registry-store-uri names another database.
    model_registry = open_registry(config, db)
    app[STORES] = Stores(
        db=db,
        experiments=ExperimentStore(db, config.effective_default_artifact_root),
        runs=RunStore(db),
        run_logs=RunLogStore(db),
        metric_history=MetricHistoryStore(db),
        logged_models=LoggedModelStore(db),
        registry=model_registry,
    )
    yield
    await model_registry.close()
    await db.close()


def build_app(config: CoreSettings) -> web.Application:
    # Order: the replica choice wraps everything it routes; errors map whatever is raised below it.
    # Authorization only when the gateway authenticates, so an open server pays nothing for it per
    # request; its middleware reads the caller itself, in place of the identity middleware.
    authorizing = config.authorization and not config.artifacts_only
    caller = authz.authorize if authorizing else identity.identity
    middlewares = [*replica.middlewares(config), middleware.errors, caller]
    app = web.Application(middlewares=middlewares, client_max_size=config.max_body_mb * 1024 * 1024)
    app[CONFIG] = config
    prefix = config.static_prefix
    meta.add_routes(app, prefix)
    # Artifact stores open in every mode; the proxy routes answer 503 under --no-serve-artifacts.
    app.cleanup_ctx.append(artifacts.artifacts_ctx)
    artifacts.add_routes(app, prefix, serving=config.serve_artifacts)
    if not config.artifacts_only:
        app.cleanup_ctx.append(_stores_ctx)
        add_endpoints(app, prefix, TRACKING_ENDPOINTS)
        if config.authorization:  # only when the gateway authenticates; an open server stays open
            app.cleanup_ctx.append(authz.authz_ctx)
            app[GUARD] = authz.guard
            add_endpoints(app, prefix, AUTH_ENDPOINTS)
        run_artifacts.add_routes(app, prefix)
        ui_helpers.add_routes(app, prefix)
        graphql_api.add_routes(app, prefix)
        auth_endpoints = AUTH_ENDPOINTS if config.authorization else ()
        openapi.add_route(app, prefix, (*TRACKING_ENDPOINTS, *auth_endpoints))
        ui.add_routes(app, prefix)
    else:
        paths = [path for path, _ in run_artifacts.DOWNLOAD_ROUTES]
        artifacts_only.add_routes(app, prefix, TRACKING_ENDPOINTS, paths)
    return app
