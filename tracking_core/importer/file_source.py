"""Reading MLflow's file store (`./mlruns`), the layout FileStore writes:

    <root>/<experiment id>/meta.yaml, tags/<key>          (deleted experiments: <root>/.trash/<id>/)
    <root>/<experiment id>/<run id>/meta.yaml, params/<key>, tags/<key>, metrics/<key>
        (a metric file holds one "timestamp value step" line per point), inputs/<id>/meta.yaml
    <root>/<experiment id>/datasets/<id>/meta.yaml
    <root>/<experiment id>/models/<model id>/meta.yaml, params/, tags/, metrics/
    <root>/models/<name>/meta.yaml, tags/, aliases/<alias>; version-<n>/meta.yaml, tags/

Keys may contain "/", stored as sub-folders. A run's latest value of a metric is the last line of
its file, as FileStore reports it. Files are read one run at a time, so memory is bounded by the
largest single run, not the store.
"""

from __future__ import annotations

import math
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import yaml

from tracking_core.importer.rows import (
    RUNS_PER_CHUNK,
    STAGE_DELETED_INTERNAL,
    Batch,
    MetricPoint,
    Row,
    logged_model_status,
)

try:  # the C loader when PyYAML was built with libyaml: meta.yaml files are many
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - pure-Python PyYAML
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

RUN_STATUSES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
# FileStore writes an input's edge types as MLflow's entities name them; the SQL stores (and
# trackgate) name a model input's ends MODEL_INPUT -> RUN_INPUT.
_INPUT_TYPES = {"DATASET": ("DATASET", "RUN"), "MODEL": ("MODEL_INPUT", "RUN_INPUT")}


def _meta(folder: Path) -> dict[str, Any]:
    with open(folder / "meta.yaml", encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader) or {}


def _key_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(key, file) for every file under `folder`; a key with "/" is a nested path."""
    if not folder.is_dir():
        return
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            yield path.relative_to(folder).as_posix(), path


def _values(folder: Path) -> dict[str, str]:
    return {key: path.read_text(encoding="utf-8") for key, path in _key_files(folder)}


def _lines(path: Path) -> Iterator[list[str]]:
    """The whitespace-separated fields of each non-empty line of a metric file."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if fields := line.split():
                yield fields


def _number(text: str) -> tuple[float, bool]:
    """A metric value as MLflow's SQL stores keep it: NaN as 0 with is_nan, infinities as the
    largest doubles (what `mlflow migrate-filestore` and every SQL-backed server hold)."""
    value = float(text)
    if math.isnan(value):
        return 0.0, True
    if math.isinf(value):
        return math.copysign(sys.float_info.max, value), False
    return value, False


class FileSource:
    """An MLflow ./mlruns folder."""

    revision = "file store"
    unique_points = False  # a metric file can hold the same line twice

    def __init__(self, root: Path, batch_size: int) -> None:
        self.root = root
        self.description = str(root)
        self.batch_size = batch_size
        self._run_list: list[tuple[str, Path, Path]] | None = None
        self._experiments = sorted(
            (
                p
                for base in (root, root / ".trash")
                if base.is_dir()
                for p in base.iterdir()
                if p.name.isdigit() and (p / "meta.yaml").is_file()
            ),
            key=lambda p: int(p.name),
        )

    def _runs(self) -> list[tuple[str, Path, Path]]:
        """(run id, run folder, experiment folder), sorted by run id; listed once per import."""
        if self._run_list is None:
            found = []
            for experiment in self._experiments:
                for child in experiment.iterdir():
                    if len(child.name) == 32 and (child / "meta.yaml").is_file():
                        found.append((child.name, child, experiment))
            self._run_list = sorted(found)
        return self._run_list

    def _models(self) -> list[Path]:
        return [
            m
            for e in self._experiments
            if (e / "models").is_dir()
            for m in sorted((e / "models").iterdir())
            if (m / "meta.yaml").is_file()
        ]

    def _registered(self) -> list[Path]:
        folder = self.root / "models"
        return sorted(m for m in folder.iterdir() if (m / "meta.yaml").is_file()) if folder.is_dir() else []

    def _rows(self, entity: str) -> Iterator[Row]:
        special = {"experiments": self._experiments_rows, "runs": self._runs_rows}
        yield from special.get(entity, getattr(self, "_" + entity))()

    async def count(self, entity: str) -> int:
        if entity == "metrics":
            return sum(1 for run_id, run, _ in self._runs() for _ in self._points(run, run_id))
        return sum(1 for _ in self._rows(entity))

    async def batches(self, entity: str) -> AsyncIterator[Batch]:
        batch: Batch = []
        for row in self._rows(entity):
            batch.append(row)
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _points(self, run: Path, run_id: str) -> Iterator[MetricPoint]:
        for key, path in _key_files(run / "metrics"):
            for parts in _lines(path):
                if len(parts) >= 3:
                    value, is_nan = _number(parts[1])
                    yield (run_id, key, int(parts[2]), int(parts[0]), value, is_nan)

    async def metric_counts(self) -> AsyncIterator[list[tuple[str, int]]]:
        counts: list[tuple[str, int]] = []
        for run_id, run, _ in self._runs():
            count = sum(1 for _ in self._points(run, run_id))
            if count:
                counts.append((run_id, count))
            if len(counts) >= RUNS_PER_CHUNK:
                yield counts
                counts = []
        if counts:
            yield counts

    async def metrics(self, run_ids: list[str]) -> AsyncIterator[list[MetricPoint]]:
        wanted = set(run_ids)
        batch: list[MetricPoint] = []
        for run_id, run, _ in self._runs():
            if run_id not in wanted:
                continue
            for point in self._points(run, run_id):
                batch.append(point)
                if len(batch) >= self.batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    # -- one generator per entity, rows shaped like trackgate's tables ---------------------------

    def _experiments_rows(self) -> Iterator[Row]:
        for folder in self._experiments:
            meta = _meta(folder)
            yield {
                "experiment_id": int(meta.get("experiment_id", folder.name)),
                "name": meta["name"],
                "artifact_location": meta.get("artifact_location") or "",
                "lifecycle_stage": meta.get("lifecycle_stage") or "active",
                "creation_time": meta.get("creation_time") or 0,
                "last_update_time": meta.get("last_update_time") or meta.get("creation_time") or 0,
            }

    def _experiment_tags(self) -> Iterator[Row]:
        for folder in self._experiments:
            for key, value in _values(folder / "tags").items():
                yield {"experiment_id": int(folder.name), "key": key, "value": value}

    def _runs_rows(self) -> Iterator[Row]:
        for run_id, run, experiment in self._runs():
            meta = _meta(run)
            status = meta.get("status")
            yield {
                "run_id": run_id,
                "experiment_id": int(meta.get("experiment_id") or experiment.name),
                "name": meta.get("run_name") or "",
                "user_id": meta.get("user_id") or "",
                "status": RUN_STATUSES.get(status, str(status)) if isinstance(status, int) else status or "RUNNING",
                "start_time": meta.get("start_time") or 0,
                "end_time": meta.get("end_time"),
                "deleted_time": meta.get("deleted_time"),
                "lifecycle_stage": meta.get("lifecycle_stage") or "active",
                "artifact_uri": meta.get("artifact_uri") or "",
            }

    def _per_run(self, sub: str) -> Iterator[Row]:
        for run_id, run, _ in self._runs():
            for key, value in _values(run / sub).items():
                yield {"run_id": run_id, "key": key, "value": value}

    def _run_tags(self) -> Iterator[Row]:
        return self._per_run("tags")

    def _params(self) -> Iterator[Row]:
        return self._per_run("params")

    def _latest_metrics(self) -> Iterator[Row]:
        for run_id, run, _ in self._runs():
            for key, path in _key_files(run / "metrics"):
                lines = deque(_lines(path), maxlen=1)
                if lines:
                    last = lines[0]  # FileStore's "latest" is the last point written
                    value, is_nan = _number(last[1])
                    yield {
                        "run_id": run_id,
                        "key": key,
                        "step": int(last[2]),
                        "timestamp": int(last[0]),
                        "value": value,
                        "is_nan": is_nan,
                    }

    def _datasets(self) -> Iterator[Row]:
        for experiment in self._experiments:
            folder = experiment / "datasets"
            for dataset in sorted(folder.iterdir()) if folder.is_dir() else []:
                meta = _meta(dataset)
                yield {
                    "dataset_uuid": dataset.name,
                    "experiment_id": int(experiment.name),
                    "name": meta["name"],
                    "digest": meta["digest"],
                    "source_type": meta["source_type"],
                    "source": meta["source"],
                    "schema": meta.get("schema"),
                    "profile": meta.get("profile"),
                }

    def _edges(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for run_id, run, _ in self._runs():
            folder = run / "inputs"
            for edge in sorted(folder.iterdir()) if folder.is_dir() else []:
                yield run_id, edge.name, _meta(edge)

    def _inputs(self) -> Iterator[Row]:
        for run_id, input_id, meta in self._edges():
            source_type, destination_type = _INPUT_TYPES.get(meta["source_type"], (meta["source_type"], "RUN"))
            yield {
                "input_uuid": input_id,
                "source_type": source_type,
                "source_id": meta["source_id"],
                "destination_type": destination_type,
                "destination_id": run_id,
                "step": 0,
            }

    def _input_tags(self) -> Iterator[Row]:
        for _, input_id, meta in self._edges():
            for name, value in (meta.get("tags") or {}).items():
                yield {"input_uuid": input_id, "name": name, "value": str(value)}

    def _logged_models(self) -> Iterator[Row]:
        for folder in self._models():
            meta = _meta(folder)
            yield {
                "model_id": meta["model_id"],
                "experiment_id": int(meta["experiment_id"]),
                "name": meta["name"],
                "artifact_location": meta.get("artifact_location") or "",
                "creation_timestamp_ms": meta.get("creation_timestamp") or 0,
                "last_updated_timestamp_ms": meta.get("last_updated_timestamp") or 0,
                "status": logged_model_status(meta.get("status")),
                "lifecycle_stage": meta.get("lifecycle_stage") or "active",
                "model_type": meta.get("model_type"),
                "source_run_id": meta.get("source_run_id"),
                "status_message": meta.get("status_message"),
            }

    def _logged_model_params(self) -> Iterator[Row]:
        for folder in self._models():
            for key, value in _values(folder / "params").items():
                yield {"model_id": folder.name, "key": key, "value": value}

    def _logged_model_tags(self) -> Iterator[Row]:
        for folder in self._models():
            for key, value in _values(folder / "tags").items():
                yield {"model_id": folder.name, "key": key, "value": value}

    def _logged_model_metrics(self) -> Iterator[Row]:
        for folder in self._models():
            experiment_id = int(folder.parent.parent.name)
            for key, path in _key_files(folder / "metrics"):
                for parts in _lines(path):
                    if len(parts) < 4:
                        continue
                    value, is_nan = _number(parts[1])
                    yield {
                        "model_id": folder.name,
                        "key": key,
                        "timestamp": int(parts[0]),
                        "step": int(parts[2]),
                        "run_id": parts[3],
                        "value": value,
                        "is_nan": is_nan,
                        "experiment_id": experiment_id,
                        "dataset_name": parts[4] if len(parts) > 4 else None,
                        "dataset_digest": parts[5] if len(parts) > 5 else None,
                    }

    def _registered_models(self) -> Iterator[Row]:
        for folder in self._registered():
            meta = _meta(folder)
            yield {
                "name": meta["name"],
                "creation_time": meta.get("creation_timestamp") or 0,
                "last_updated_time": meta.get("last_updated_timestamp") or 0,
                "description": meta.get("description"),
            }

    def _registered_model_tags(self) -> Iterator[Row]:
        for folder in self._registered():
            name = _meta(folder)["name"]
            for key, value in _values(folder / "tags").items():
                yield {"name": name, "key": key, "value": value}

    def _versions(self) -> Iterator[tuple[str, Path]]:
        for folder in self._registered():
            name = _meta(folder)["name"]
            versions = [v for v in folder.iterdir() if v.name.startswith("version-") and (v / "meta.yaml").is_file()]
            for version in sorted(versions, key=lambda v: int(v.name.split("-", 1)[1])):
                yield name, version

    def _model_versions(self) -> Iterator[Row]:
        for name, folder in self._versions():
            meta = _meta(folder)
            deleted = meta.get("current_stage") == STAGE_DELETED_INTERNAL
            yield {
                "name": name,
                "version": int(meta["version"]),
                "creation_time": meta.get("creation_timestamp") or 0,
                "last_updated_time": meta.get("last_updated_timestamp") or 0,
                "description": meta.get("description"),
                "user_id": meta.get("user_id"),
                "current_stage": "None" if deleted else meta.get("current_stage") or "None",
                "source": meta.get("source"),
                "run_id": meta.get("run_id"),
                "run_link": meta.get("run_link"),
                "status": meta.get("status") or "READY",
                "status_message": meta.get("status_message"),
                "storage_location": meta.get("storage_location"),
                "deleted": deleted,
            }

    def _model_version_tags(self) -> Iterator[Row]:
        for name, folder in self._versions():
            version = int(folder.name.split("-", 1)[1])
            for key, value in _values(folder / "tags").items():
                yield {"name": name, "version": version, "key": key, "value": value}

    def _registered_model_aliases(self) -> Iterator[Row]:
        for folder in self._registered():
            meta = _meta(folder)
            aliases = dict(meta.get("aliases") or {})
            aliases.update({k: v.strip() for k, v in _values(folder / "aliases").items()})
            for alias, version in aliases.items():
                yield {"name": meta["name"], "alias": alias, "version": int(version)}
