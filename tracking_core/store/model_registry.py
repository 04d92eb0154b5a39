"""The model registry's stores, on the registry database (`--registry-store-uri`).

The registry database is the tracking database unless the registry URI names another one; then
it gets its own engine, and the model-version store still reads logged models and runs from the
tracking database. Its schema is prepared by `schema.prepare_all`, never here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tracking_core.settings import CoreSettings
from tracking_core.store.database import Database, open_database
from tracking_core.store.model_versions import ModelVersionStore
from tracking_core.store.registered_models import RegisteredModelStore


@dataclass(frozen=True)
class RegistryStore:
    models: RegisteredModelStore
    versions: ModelVersionStore
    db: Database  # the registry database; the tracking one when they are the same
    owns_db: bool

    async def close(self) -> None:
        """Dispose of the registry's own engine, if it has one (the tracking engine is not ours)."""
        if self.owns_db:
            await self.db.close()


def open_registry(config: CoreSettings, tracking_db: Database) -> RegistryStore:
    separate = config.effective_registry_store_uri != config.backend_store_uri
    db = open_database(config, config.effective_registry_store_uri) if separate else tracking_db
    return RegistryStore(
        models=RegisteredModelStore(db),
        versions=ModelVersionStore(db, tracking_db),
        db=db,
        owns_db=separate,
    )
