"""`trackgate gc`: exactly the deleted runs' (and experiments') rows and artifacts go, nothing else."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.cli_gc import add_gc_arguments
from tests.artifacts.conftest import Core
from tests.artifacts.test_artifacts_api import ART
from tracking_core.gc import older_than_ms
from tracking_core.store import purge, tables


def gc_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_gc_arguments(parser)
    args = parser.parse_args(argv)
    return int(args.handler(args))


def count(db_path: Path, table: sa.Table, **where: Any) -> int:
    engine = sa.create_engine(f"sqlite:///{db_path}")
    with engine.connect() as conn:
        stmt = sa.select(sa.func.count()).select_from(table)
        for column, value in where.items():
            stmt = stmt.where(table.c[column] == value)
        n = int(conn.scalar(stmt) or 0)
    engine.dispose()
    return n


async def make_run(c: Any, eid: str, points: int) -> str:
    run = (await (await c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": eid})).json())["run"]
    run_id = run["info"]["run_id"]
    metrics = [
        {"key": k, "value": i, "timestamp": 1000 + i, "step": i % 3}
        for k in ("loss", "acc")
        for i in range(points)
    ]
    for start in range(0, len(metrics), 1000):
        batch = {
            "run_id": run_id,
            "metrics": metrics[start : start + 1000],
            "params": [{"key": "lr", "value": "1"}],
        }
        assert (await c.post("/api/2.0/mlflow/runs/log-batch", json=batch)).status == 200
    await c.put(f"{ART}/{eid}/{run_id}/artifacts/model/weights.bin", data=b"w" * 1000)
    return run_id


@pytest.mark.parametrize(
    ("duration", "ms"), [("30d", 2_592_000_000), ("1d2h3m4s", 93_784_000), ("90m", 5_400_000), ("5s", 5_000)]
)
def test_older_than(duration: str, ms: int) -> None:
    assert older_than_ms(duration) == ms


@pytest.mark.parametrize("duration", ["30", "", "1w", "-5m", "d"], ids=repr)
def test_older_than_refuses_what_it_would_have_to_guess(duration: str) -> None:
    with pytest.raises(ValueError):
        older_than_ms(duration)


def test_refuses_without_a_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("TRACKGATE_BACKEND_STORE_URI", "MLFLOW_BACKEND_STORE_URI"):
        monkeypatch.delenv(name, raising=False)
    assert gc_main([]) == 2
    assert "refusing" in capsys.readouterr().err


async def test_gc_removes_exactly_the_deleted(
    core: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(purge, "METRIC_SLICE", 7)  # many slices from a small history
    db, artifacts = tmp_path / "core.db", tmp_path / "artifacts"
    async with core() as c:
        eid = (await (await c.post("/api/2.0/mlflow/experiments/create", json={"name": "keep"})).json())[
            "experiment_id"
        ]
        kept, doomed = await make_run(c, eid, 40), await make_run(c, eid, 40)
        gone_eid = (await (await c.post("/api/2.0/mlflow/experiments/create", json={"name": "gone"})).json())[
            "experiment_id"
        ]
        in_gone = await make_run(c, gone_eid, 5)
        await c.post("/api/2.0/mlflow/runs/delete", json={"run_id": doomed})
        await c.post("/api/2.0/mlflow/experiments/delete", json={"experiment_id": gone_eid})

    base = ["--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", str(artifacts)]
    # Named ids that are not deleted: refused, and nothing is removed.
    assert await asyncio.to_thread(gc_main, [*base, "--run-ids", kept]) == 2
    assert "not in the deleted lifecycle stage" in capsys.readouterr().err
    # Too recent for --older-than: nothing to do.
    assert await asyncio.to_thread(gc_main, [*base, "--older-than", "1d"]) == 0
    assert count(db, tables.runs) == 3

    assert await asyncio.to_thread(gc_main, base) == 0
    out = capsys.readouterr().out
    assert f"removed run {doomed}" in out and f"removed run {in_gone}" in out
    assert f"removed experiment {gone_eid} ('gone')" in out
    assert "removed 2 run(s) (90 metric rows) and 1 experiment(s)" in out

    assert count(db, tables.runs) == 1 and count(db, tables.runs, run_id=kept) == 1
    assert count(db, tables.metrics) == 80 and count(db, tables.metrics, run_id=kept) == 80
    for table in (tables.latest_metrics, tables.params, tables.run_tags):
        assert count(db, table, run_id=doomed) == 0 and count(db, table, run_id=kept) > 0
    assert count(db, tables.experiments, experiment_id=int(gone_eid)) == 0
    assert count(db, tables.experiments, experiment_id=int(eid)) == 1
    assert (artifacts / eid / kept / "artifacts/model/weights.bin").exists()
    assert not (artifacts / eid / doomed).exists()
    assert not (artifacts / gone_eid / in_gone).exists()


async def test_experiment_stays_when_a_logged_model_artifact_cannot_be_removed(
    core: Core, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, artifacts = tmp_path / "core.db", tmp_path / "artifacts"
    async with core() as c:
        eid = (await (await c.post("/api/2.0/mlflow/experiments/create", json={"name": "stray"})).json())[
            "experiment_id"
        ]
        created = await c.post("/api/2.0/mlflow/logged-models", json={"experiment_id": eid, "name": "m"})
        assert created.status == 200, await created.text()
        model_id = (await created.json())["model"]["info"]["model_id"]
        await c.post("/api/2.0/mlflow/experiments/delete", json={"experiment_id": eid})
    # A model stored outside today's artifact roots (an older setting): confinement refuses to touch it.
    outside = tmp_path / "elsewhere" / model_id
    outside.mkdir(parents=True)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(
            sa.update(tables.logged_models)
            .where(tables.logged_models.c.model_id == model_id)
            .values(artifact_location=outside.as_uri())
        )
    engine.dispose()

    base = ["--backend-store-uri", f"sqlite:///{db}", "--artifacts-destination", str(artifacts)]
    assert await asyncio.to_thread(gc_main, base) == 1
    assert f"kept experiment {eid}: a logged model's artifacts could not be removed" in capsys.readouterr().out
    assert count(db, tables.experiments, experiment_id=int(eid)) == 1
    assert outside.exists()
