"""Typed application state of the tracking core: every `web.AppKey` in one place."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from tracking_core.artifacts.service import ArtifactService
from tracking_core.contract import Identity
from tracking_core.settings import CoreSettings
from tracking_core.store.database import Database
from tracking_core.store.experiments import ExperimentStore
from tracking_core.store.logged_models import LoggedModelStore
from tracking_core.store.metric_history import MetricHistoryStore
from tracking_core.store.model_registry import RegistryStore
from tracking_core.store.run_writes import RunLogStore
from tracking_core.store.runs import RunStore


@dataclass(frozen=True)
class Stores:
    """The store objects handlers use; built once per worker in a cleanup_ctx."""

    db: Database
    experiments: ExperimentStore
    runs: RunStore
    run_logs: RunLogStore
    metric_history: MetricHistoryStore
    logged_models: LoggedModelStore
    registry: RegistryStore


CONFIG = web.AppKey("config", CoreSettings)
STORES = web.AppKey("stores", Stores)
# Artifact stores and the proxy destination; present in every mode, artifacts-only included.
ARTIFACTS = web.AppKey("artifacts", ArtifactService)
# The authenticated caller of this request (tracking_core.identity); absent when unauthenticated.
IDENTITY = web.RequestKey("identity", Identity)


def stores(request: web.Request) -> Stores:
    return request.app[STORES]
