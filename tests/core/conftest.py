"""The tracking core in-process on each real database: the store contract runs on all three.

Each backend gets one throwaway database per test session, initialised once by the same
`schema.prepare` the server uses; tests create their own experiments, so they never see each
other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.services import throwaway_mariadb, throwaway_postgres
from tracking_core.app import build_app
from tracking_core.settings import CoreSettings
from tracking_core.store import schema

BACKENDS = ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(scope="session", params=BACKENDS)
def backend_uri(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        cm: Any = contextlib.nullcontext(f"sqlite:///{tmp_path_factory.mktemp('db')}/core.db")
    elif request.param == "postgresql":
        cm = throwaway_postgres()
    else:
        cm = throwaway_mariadb()
    with cm as uri:
        asyncio.run(schema.prepare(CoreSettings(backend_store_uri=uri)))
        yield uri


class Api:
    """A thin JSON client for the core's REST API, as the mlflow client speaks it."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def call(self, method: str, path: str, body: Any = None, params: Any = None,
                   expect: int = 200) -> Any:
        url = path if path.startswith("/") else f"/api/2.0/mlflow/{path}"
        resp = await self.client.request(method, url, json=body, params=params)
        data = await resp.json(content_type=None)
        assert resp.status == expect, (resp.status, data)
        return data

    async def post(self, path: str, body: Any = None, expect: int = 200) -> Any:
        return await self.call("POST", path, body if body is not None else {}, expect=expect)

    async def get(self, path: str, params: Any = None, expect: int = 200) -> Any:
        return await self.call("GET", path, params=params, expect=expect)

    async def new_experiment(self) -> str:
        return (await self.post("experiments/create", {"name": f"exp-{uuid.uuid4().hex[:12]}"}))["experiment_id"]

    async def new_run(self, experiment_id: str, **fields: Any) -> dict[str, Any]:
        body = {"experiment_id": experiment_id, "start_time": 1_700_000_000_000, **fields}
        return (await self.post("runs/create", body))["run"]


@pytest.fixture
async def api(backend_uri: str, tmp_path: Any) -> AsyncIterator[Api]:
    config = CoreSettings(backend_store_uri=backend_uri, artifacts_destination=str(tmp_path / "artifacts"))
    async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as client:
        yield Api(client)
