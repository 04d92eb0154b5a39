"""SQLite renders run info, params and tags as JSON itself (store/run_json.py); other backends
build the same messages in Python. Both paths must give byte-identical responses.

Runs are made through the REST API with the awkward cases (quotes, backslashes, control and
non-ASCII characters, 6,000-character values, NaN and clamped infinities, doubles that need 17
digits, MLflow 3 metric extras, ended and deleted runs), then both loaders read them.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.core.conftest import Api
from tracking_core.app import build_app
from tracking_core.settings import CoreSettings
from tracking_core.store import runs as run_queries
from tracking_core.store import schema
from tracking_core.store.database import Database, create_engine
from tracking_core.store.run_json import load_run_parts

AWKWARD = ['quote " and \\ backslash', "tab\tnew\nline\r", "ünïcödé ☃ 𝄞", "\u0001\u001f control", "x" * 6000, ""]


async def _make_runs(api: Api) -> list[str]:
    exp = await api.new_experiment()
    ids = []
    bare = await api.new_run(exp)  # only the run-name tag
    ids.append(bare["info"]["run_id"])
    for i, text in enumerate(AWKWARD):
        run = await api.new_run(exp, run_name=f"run {text[:40]}", tags=[{"key": "note", "value": text}])
        run_id = run["info"]["run_id"]
        await api.post("runs/log-batch", {
            "run_id": run_id,
            "params": [{"key": "p", "value": text}, {"key": f"a-{i}", "value": str(i)}],
            "tags": [{"key": "z", "value": text}, {"key": "A", "value": "upper"}],
            "metrics": [
                {"key": "nan", "value": "NaN", "timestamp": 1, "step": 0},
                {"key": "inf", "value": "Infinity", "timestamp": 2, "step": 1},
                {"key": "-inf", "value": "-Infinity", "timestamp": 3, "step": 2},
                {"key": "tiny", "value": 0.1 + 0.2, "timestamp": 4, "step": 3},
                {"key": "big", "value": 123456789.12345679, "timestamp": 2**62, "step": -5},
            ],
        })
        ids.append(run_id)
    model = await api.post("logged-models", {"experiment_id": exp, "name": "m"})
    await api.post("runs/log-metric", {
        "run_id": ids[1], "key": "with_model", "value": 0.5, "timestamp": 5, "step": 0,
        "model_id": model["model"]["info"]["model_id"], "dataset_name": "train", "dataset_digest": "abc123",
    })
    await api.post("runs/update", {"run_id": ids[2], "status": "FINISHED", "end_time": 1_700_000_001_000})
    await api.post("runs/delete", {"run_id": ids[3]})
    return ids


@pytest.fixture
async def sqlite_uri(tmp_path: Path) -> str:
    uri = f"sqlite:///{tmp_path}/run_json.db"
    await schema.prepare(CoreSettings(backend_store_uri=uri))
    return uri


async def test_sqlite_json_matches_the_portable_rendering(sqlite_uri: str, tmp_path: Path) -> None:
    config = CoreSettings(backend_store_uri=sqlite_uri, artifacts_destination=str(tmp_path / "artifacts"))
    async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as client:
        ids = await _make_runs(Api(client))
    asked = [*ids, "0" * 32]  # an id that does not exist is left out by both
    random.Random(7).shuffle(asked)
    db = Database(create_engine(config))
    try:
        async with db.read() as conn:
            from_sql = await load_run_parts(conn, asked)
            from_python = await run_queries._load_run_parts(conn, asked, {"ids": asked})
    finally:
        await db.close()
    assert [run_id for run_id, _ in from_sql] == [i for i in asked if i in ids]
    assert orjson.dumps(from_sql) == orjson.dumps(from_python)
    decoded: list[Any] = orjson.loads(orjson.dumps(from_sql))
    by_id = {run_id: part for run_id, part in decoded}
    noted = by_id[ids[1]]["data"]
    assert [t["key"] for t in noted["tags"]] == sorted(t["key"] for t in noted["tags"])
    assert {"key": "z", "value": AWKWARD[0]} in noted["tags"]
    values = {m["key"]: m["value"] for m in noted["metrics"]}
    assert values["tiny"] == 0.1 + 0.2 and values["nan"] == "NaN" and values["big"] == 123456789.12345679
    assert "end_time" in by_id[ids[2]]["info"] and "end_time" not in by_id[ids[1]]["info"]
    assert "params" not in by_id[ids[0]]["data"] and "metrics" not in by_id[ids[0]]["data"]
