"""`trackgate gc`: remove deleted runs and experiments for good, artifacts first, then rows.

Artifacts go first so that a failure (store unreachable, no permission) leaves the rows in
place and a later `gc` retries; a run whose artifacts could not be removed keeps its rows.
Artifact locations are resolved exactly as the server resolves them (`ArtifactService`), so
`mlflow-artifacts:` runs are removed from `--artifacts-destination`, and runs written straight
to S3/GCS from there. Every removal is reported through `say`, one line each.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tracking_core.artifacts.repository import default_registry
from tracking_core.artifacts.service import ArtifactService
from tracking_core.durations import parse_duration
from tracking_core.errors import MlflowError
from tracking_core.settings import CoreSettings
from tracking_core.store import purge
from tracking_core.store.database import open_database


def older_than_ms(text: str) -> int:
    """`--older-than` ('30d', '1d2h3m4s', '90m', as MLflow's gc takes it) in milliseconds."""
    return int(parse_duration(text, bare_seconds=False).total_seconds() * 1000)


@dataclass(frozen=True)
class GcRequest:
    older_than_ms: int | None = None
    run_ids: Sequence[str] = ()
    experiment_ids: Sequence[int] = ()


@dataclass
class GcResult:
    runs: int = 0
    experiments: int = 0
    metric_rows: int = 0
    failures: int = 0


def _run_dir(artifact_uri: str, run_id: str) -> str:
    """The run's own directory when the root has the usual `<...>/<run_id>/artifacts` shape, so
    nothing (not even an empty folder) is left; otherwise the artifact root itself."""
    suffix = f"/{run_id}/artifacts"
    trimmed = artifact_uri.rstrip("/")
    return trimmed[: -len("/artifacts")] if trimmed.endswith(suffix) else artifact_uri


async def _delete_artifacts(service: ArtifactService, uri: str) -> None:
    repo, path = await service.locate(uri)
    await repo.delete(path)


async def collect(config: CoreSettings, request: GcRequest, say: Callable[[str], None]) -> GcResult:
    """Select and remove; raises MlflowError before removing anything if a named id is not eligible."""
    db = open_database(config)
    service = await ArtifactService.open(config, default_registry())
    result = GcResult()
    now = int(time.time() * 1000)
    try:
        runs = await purge.deleted_runs(
            db, request.run_ids, request.experiment_ids, request.older_than_ms, now
        )
        experiments = await purge.deleted_experiments(
            db, request.experiment_ids, bool(request.run_ids), request.older_than_ms, now
        )
        removable: list[str] = []
        for run in runs:
            try:
                await _delete_artifacts(service, _run_dir(run.artifact_uri, run.run_id))
            except (MlflowError, OSError) as exc:
                result.failures += 1
                message = exc.message if isinstance(exc, MlflowError) else str(exc)
                say(f"kept run {run.run_id}: its artifacts at {run.artifact_uri} could not be removed "
                    f"({message})")
                continue
            removable.append(run.run_id)
            say(f"removed run {run.run_id} (experiment {run.experiment_id}) "
                f"and its artifacts at {run.artifact_uri}")
        result.metric_rows = await purge.delete_runs(db, removable)
        result.runs = len(removable)
        kept = {r.experiment_id for r in runs if r.run_id not in removable}
        for experiment in experiments:
            if experiment.experiment_id in kept:
                say(f"kept experiment {experiment.experiment_id}: some of its runs are still there")
                result.failures += 1
                continue
            try:
                for uri in experiment.model_artifact_uris:
                    await _delete_artifacts(service, uri)
            except (MlflowError, OSError) as exc:
                # Same rule as for runs: rows stay until their artifacts are gone, so a later gc retries
                # (e.g. a logged model stored outside today's artifact roots is refused by confinement).
                result.failures += 1
                message = exc.message if isinstance(exc, MlflowError) else str(exc)
                say(f"kept experiment {experiment.experiment_id}: a logged model's artifacts could not be "
                    f"removed ({message})")
                continue
            await purge.delete_experiment(db, experiment.experiment_id)
            result.experiments += 1
            say(f"removed experiment {experiment.experiment_id} ({experiment.name!r})")
    finally:
        await service.close()
        await db.close()
    return result
