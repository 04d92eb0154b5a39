"""A SQLite worker imports only what it uses: no ORM (SQLAlchemy's asyncio extension loads it), no
async SQLite driver (every statement runs inline), no Alembic (the schema is current) and no S3
client library (no bucket is configured). Each is import time on every worker start, and memory
in every worker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import orjson

from tracking_core.settings import CoreSettings
from tracking_core.store import schema

UNWANTED = ("sqlalchemy.orm", "sqlalchemy.ext.asyncio", "aiosqlite", "alembic", "aioboto3", "botocore")

# Builds the worker's app exactly as tracking_core.worker does, serves it, and sends it the calls of
# a training script; then reports which of the modules above got imported along the way.
WORKER_SESSION = """
import asyncio, sys, orjson
from aiohttp.test_utils import TestClient, TestServer
from tracking_core.settings import CoreSettings
from tracking_core.worker import build_app

async def main():
    app = build_app(CoreSettings.from_json(sys.argv[1]))
    async with TestClient(TestServer(app)) as client:
        async def call(method, path, body):
            r = await client.request(method, "/api/2.0/mlflow/" + path, json=body)
            assert r.status == 200, await r.text()
            return await r.json()
        exp = (await call("POST", "experiments/create", {"name": "e"}))["experiment_id"]
        run = (await call("POST", "runs/create", {"experiment_id": exp}))["run"]["info"]["run_id"]
        await call("POST", "runs/log-metric", {"run_id": run, "key": "loss", "value": 0.5, "timestamp": 1, "step": 0})
        await call("POST", "runs/search", {"experiment_ids": [exp], "filter": "metrics.loss < 1"})
    print(orjson.dumps({m: m in sys.modules for m in sys.argv[2:]}).decode())

asyncio.run(main())
"""


def test_a_sqlite_worker_imports_no_orm_driver_alembic_or_s3(tmp_path: Path) -> None:
    settings = CoreSettings(backend_store_uri=f"sqlite:///{tmp_path / 't.db'}", default_artifact_root=str(tmp_path))
    asyncio.run(schema.prepare(settings))  # as the supervisor does before any worker serves
    out = subprocess.run(
        [sys.executable, "-c", WORKER_SESSION, settings.to_json(), *UNWANTED],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    assert orjson.loads(out.strip().splitlines()[-1]) == dict.fromkeys(UNWANTED, False)
