"""Where a new model version's files are: its `source` resolved to a storage location.

- `models:/<model_id>`: the logged model's artifact location (the tracking database's
  `logged_models` row; a missing or deleted model is a 404);
- `runs:/<run_id>/<path>`: the run's artifact URI joined with the path;
- `models:/<name>/<version>`: the lineage of that registry version (copy_model_version);
- anything else is its own location.

Logged models and runs live in the tracking database, which `--registry-store-uri` may make a
different one from the registry's; every function here takes the connection it reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tracking_core.entities import LifecycleStage
from tracking_core.errors import invalid, not_found
from tracking_core.registry_validation import MAX_SOURCE_LENGTH
from tracking_core.store import tables
from tracking_core.store.registry_rows import require_model, require_version
from tracking_core.store.upsert import upsert
from tracking_core.store.uris import join_uri

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

MODEL_VERSIONS_TAG = "mlflow.modelVersions"

_LOGGED_MODEL = re.compile(r"^models:/([^/@]+)$")
_REGISTRY_VERSION = re.compile(r"^models:/([^/@]+)/(\d+)$")
_RUN = re.compile(r"^runs:/([^/]+)(?:/(.*))?$")


@dataclass(frozen=True)
class Lineage:
    storage_location: str
    run_id: str | None
    model_id: str | None


def _mismatch(source: str, what: str) -> Exception:
    return invalid(
        f"Invalid model version source: '{source}'. The {what} request parameter must identify the "
        "resource that contains the source."
    )


async def logged_model(tracking: AsyncConnection, model_id: str, *, lock: bool = False) -> Any:
    lm = tables.logged_models
    stmt = sa.select(lm.c.artifact_location, lm.c.source_run_id, lm.c.lifecycle_stage).where(
        lm.c.model_id == model_id
    )
    row = (await tracking.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None or row.lifecycle_stage == LifecycleStage.DELETED:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return row


async def resolve(
    registry: AsyncConnection,
    tracking: AsyncConnection,
    source: str,
    run_id: str | None,
    model_id: str | None,
) -> Lineage:
    """The storage location, run and logged model of a version about to be created from `source`."""
    location = source
    if match := _LOGGED_MODEL.match(source):
        if model_id and model_id != match.group(1):
            raise _mismatch(source, "model_id")
        model_id = match.group(1)
    elif match := _REGISTRY_VERSION.match(source):
        parent = await require_version(
            registry, await require_model(registry, match.group(1)), int(match.group(2))
        )
        location = parent.storage_location or parent.source
        run_id = run_id or parent.run_id
        model_id = model_id or parent.model_id
    elif match := _RUN.match(source):
        if run_id and run_id != match.group(1):
            raise _mismatch(source, "run_id")
        run_id = match.group(1)
        runs = tables.runs
        artifact_uri = await tracking.scalar(sa.select(runs.c.artifact_uri).where(runs.c.run_id == run_id))
        if artifact_uri is None:
            raise not_found(f"Run with id={run_id} not found")
        path = (match.group(2) or "").strip("/")
        location = join_uri(artifact_uri, path) if path else artifact_uri
    if model_id:
        # Locked: the same transaction appends to this model's mlflow.modelVersions tag.
        found = await logged_model(tracking, model_id, lock=True)
        if _LOGGED_MODEL.match(source):
            location = found.artifact_location
        run_id = run_id or found.source_run_id
    if len(location) > MAX_SOURCE_LENGTH:
        raise invalid(f"The storage location of source '{source}' exceeds {MAX_SOURCE_LENGTH} characters.")
    return Lineage(location, run_id, model_id)


async def link_logged_model(tracking: AsyncConnection, model_id: str, name: str, version: int) -> None:
    """Append {name, version} to the logged model's `mlflow.modelVersions` tag (a JSON list).

    The client appends the same entry again afterwards (as it does against MLflow); an entry
    already present is not added twice here.
    """
    tags = tables.logged_model_tags
    current = await tracking.scalar(
        sa.select(tags.c.value).where(tags.c.model_id == model_id, tags.c.key == MODEL_VERSIONS_TAG)
    )
    try:
        entries = json.loads(current) if current else []
    except ValueError:
        entries = []
    if not isinstance(entries, list):
        entries = []  # not ours to interpret; the registry's own record of the link replaces it
    entry = {"name": name, "version": str(version)}
    if entry not in entries:
        entries.append(entry)
    await upsert(
        tracking,
        tags,
        [{"model_id": model_id, "key": MODEL_VERSIONS_TAG, "value": json.dumps(entries)}],
        ["value"],
    )
