"""Everything the official client can read back, as plain data, to compare two tracking servers.

`snapshot(client)` walks experiments, runs (info, params, tags, latest metrics, inputs, outputs),
every metric history, logged models, registered models, versions and aliases, and renders each
entity through its protobuf form, so every field the REST API carries is compared.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf.json_format import MessageToDict
from mlflow import MlflowClient
from mlflow.entities import ViewType


def _plain(entity: Any) -> Any:
    return _nan_safe(MessageToDict(entity.to_proto(), preserving_proto_field_name=True))


def _nan_safe(value: Any) -> Any:
    """NaN != NaN; compare its spelling instead."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _nan_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_safe(v) for v in value]
    return value


def _version(data: dict[str, Any]) -> dict[str, Any]:
    """Two differences of trackgate's server that hold with or without an import (reported, not
    the importer's to fix): a version without a description is sent with "" (MLflow's server sends
    "" too for versions it created, None only for ones written by a local client), and
    SearchModelVersions carries each version's aliases (MLflow's fills them only on Get)."""
    if data.get("description") == "":
        del data["description"]
    data.pop("aliases", None)
    return data


def _model(data: dict[str, Any]) -> dict[str, Any]:
    data["latest_versions"] = [_version(v) for v in data.get("latest_versions", [])]
    return _unordered(data, "tags", "aliases", "latest_versions")


def _logged_model(data: dict[str, Any]) -> dict[str, Any]:
    _unordered(data.get("info", {}), "tags")
    return data


def _sorted(items: list[Any]) -> list[Any]:
    return sorted(items, key=repr)


def _unordered(data: dict[str, Any], *fields: str) -> dict[str, Any]:
    """Lists whose order carries no meaning (tags, latest versions), sorted."""
    for name in fields:
        if name in data:
            data[name] = _sorted(data[name])
    return data


def _run(client: MlflowClient, run: Any) -> dict[str, Any]:
    data = _plain(run)
    for part in ("params", "tags", "metrics"):
        data.get("data", {})[part] = _sorted(data.get("data", {}).get(part, []))
    # Input order is the database's row order (MLflow's store has no ORDER BY there either).
    for part in ("dataset_inputs", "model_inputs"):
        if part in data.get("inputs", {}):
            data["inputs"][part] = _sorted([_unordered(item, "tags") for item in data["inputs"][part]])
    data["histories"] = {
        key: [_nan_safe((m.key, m.value, m.timestamp, m.step)) for m in client.get_metric_history(run.info.run_id, key)]
        for key in sorted(run.data.metrics)
    }
    for key in data["histories"]:
        data["histories"][key].sort(key=repr)
    return data


def snapshot(client: MlflowClient) -> dict[str, Any]:
    experiments = client.search_experiments(view_type=ViewType.ALL, max_results=1000)
    ids = [e.experiment_id for e in experiments]
    runs = client.search_runs(ids, run_view_type=ViewType.ALL, max_results=1000)
    models = client.search_logged_models(ids) if ids else []
    registered = client.search_registered_models(max_results=1000)
    versions = client.search_model_versions(max_results=1000)
    aliases = {
        (m.name, alias): _version(_plain(client.get_model_version_by_alias(m.name, alias)))
        for m in registered
        for alias in m.aliases
    }
    return {
        "experiments": {e.experiment_id: _unordered(_plain(e), "tags") for e in experiments},
        "runs": {r.info.run_id: _run(client, r) for r in runs},
        "logged_models": {m.model_id: _logged_model(_plain(m)) for m in models},
        "registered_models": {m.name: _model(_plain(m)) for m in registered},
        "model_versions": {(v.name, str(v.version)): _version(_plain(v)) for v in versions},
        "aliases": aliases,
    }


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Readable list of what differs, entity by entity (empty when identical)."""
    problems = []
    for kind in expected:
        if expected[kind].keys() != actual[kind].keys():
            problems.append(f"{kind}: ids {sorted(map(str, expected[kind]))} != {sorted(map(str, actual[kind]))}")
            continue
        for key, value in expected[kind].items():
            if value != actual[kind][key]:
                problems.append(f"{kind} {key}: " + "; ".join(_field_differences(value, actual[kind][key])))
    return problems


def _field_differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for name in sorted(expected.keys() | actual.keys()):
            out += _field_differences(expected.get(name), actual.get(name), f"{path}.{name}")
        return out
    if expected != actual:
        return [f"{path}: {str(expected)[:300]!s} != {str(actual)[:300]!s}"]
    return []
