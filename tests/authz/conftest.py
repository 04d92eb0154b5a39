"""The tracking core in-process with authorization on (as when the gateway authenticates), on
SQLite and PostgreSQL; callers are named by the identity headers the gateway would send."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.services import throwaway_postgres
from tracking_core.app import build_app
from tracking_core.contract import Identity, identity_headers
from tracking_core.settings import CoreSettings
from tracking_core.store import schema

ADMIN = "root"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend_uri(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        cm: Any = contextlib.nullcontext(f"sqlite:///{tmp_path_factory.mktemp('authz')}/core.db")
    else:
        cm = throwaway_postgres()
    with cm as uri:
        asyncio.run(schema.prepare(CoreSettings(backend_store_uri=uri)))
        yield uri


class As:
    """Calls to the core as one caller (subject and groups), as the gateway would forward them."""

    def __init__(self, client: TestClient, subject: str, groups: tuple[str, ...] = ()) -> None:
        self.client = client
        self.headers = identity_headers(Identity(subject, "basic", groups=groups))

    async def call(self, method: str, path: str, body: Any = None, params: Any = None, expect: int = 200) -> Any:
        url = path if path.startswith("/") else f"/api/2.0/mlflow/{path}"
        resp = await self.client.request(method, url, json=body, params=params, headers=self.headers)
        data = await resp.json(content_type=None)
        assert resp.status == expect, (resp.status, data)
        return data


@contextlib.asynccontextmanager
async def core(uri: str, **settings: Any) -> AsyncIterator[TestClient]:
    config = CoreSettings(backend_store_uri=uri, auth=("basic",), admin_users=(ADMIN,), **settings)
    client = TestClient(TestServer(build_app(config)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
