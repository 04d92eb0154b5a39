"""Helpers for the registry contract tests: unique names, and models/versions made in one call."""

from __future__ import annotations

import uuid
from typing import Any

from tests.core.conftest import Api

RM = "registered-models"
MV = "model-versions"


def unique(prefix: str = "model") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def delete(api: Api, path: str, body: dict[str, Any], expect: int = 200) -> Any:
    """Registry DELETE endpoints take a JSON body, as the mlflow client sends them."""
    return await api.call("DELETE", path, body, expect=expect)


async def patch(api: Api, path: str, body: dict[str, Any], expect: int = 200) -> Any:
    return await api.call("PATCH", path, body, expect=expect)


async def new_model(api: Api, name: str | None = None, **fields: Any) -> str:
    name = name or unique()
    await api.post(f"{RM}/create", {"name": name, **fields})
    return name


async def new_version(
    api: Api, name: str, source: str = "s3://bucket/model", **fields: Any
) -> dict[str, Any]:
    return (await api.post(f"{MV}/create", {"name": name, "source": source, **fields}))["model_version"]


async def get_model(api: Api, name: str) -> dict[str, Any]:
    return (await api.get(f"{RM}/get", {"name": name}))["registered_model"]


async def get_version(api: Api, name: str, version: str | int) -> dict[str, Any]:
    return (await api.get(f"{MV}/get", {"name": name, "version": str(version)}))["model_version"]


async def new_logged_model(api: Api, experiment_id: str, **fields: Any) -> dict[str, Any]:
    body = {"experiment_id": experiment_id, "name": "model", **fields}
    return (await api.post("logged-models", body))["model"]["info"]
