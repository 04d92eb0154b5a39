"""The SQLite write path (one write connection, transactions on the driver): what it must never do.

A failed write leaves nothing behind and the connection keeps working; another process holding
the write lock makes a write wait, not fail; a driver error surfaces as SQLAlchemy's error type
(the core's one error mapping turns it into 503/500, never a traceback).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tracking_core.errors import MlflowError
from tracking_core.settings import CoreSettings
from tracking_core.store import schema
from tracking_core.store.database import Database, create_engine
from tracking_core.store.experiments import ExperimentStore
from tracking_core.store.run_writes import MetricPoint, RunLogStore
from tracking_core.store.runs import RunStore


class Stores:
    def __init__(self, db: Database, path: Path) -> None:
        self.db, self.path = db, path
        self.runs, self.logs = RunStore(db), RunLogStore(db)

    def rows(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.path) as other:
            return other.execute(sql, args).fetchall()


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    path = tmp_path / "w.db"
    config = CoreSettings(backend_store_uri=f"sqlite:///{path}")
    await schema.prepare(config)
    db = Database(create_engine(config))
    yield Stores(db, path)
    await db.close()


async def new_run(s: Stores) -> str:
    exp = int(await ExperimentStore(s.db, "/tmp/a").create("e", None, []))
    return str((await s.runs.create(exp, "u", "r", None, []))["info"]["run_id"])


def point(step: int, value: float = 1.0, timestamp: int = 1000) -> MetricPoint:
    return MetricPoint("loss", value, timestamp, step)


async def test_a_failed_batch_leaves_nothing_and_the_next_write_works(stores: Stores) -> None:
    run_id = await new_run(stores)
    await stores.logs.log_batch(run_id, [], [("lr", "0.1")], [])
    with pytest.raises(MlflowError):
        await stores.logs.log_batch(run_id, [point(0)], [("lr", "0.2")], [("t", "v")])
    assert stores.rows("SELECT count(*) FROM metrics") == [(0,)]
    assert stores.rows("SELECT count(*) FROM run_tags WHERE key = 't'") == [(0,)]
    await stores.logs.log_batch(run_id, [point(1)], [], [])
    assert stores.rows("SELECT step FROM metrics") == [(1,)]


async def test_latest_metric_is_the_greatest_step_timestamp_value(stores: Stores) -> None:
    run_id = await new_run(stores)
    for step, value, timestamp in [(5, 1.0, 10), (3, 9.0, 99), (5, 0.5, 11), (5, 0.7, 11), (5, 0.6, 11)]:
        await stores.logs.log_batch(run_id, [point(step, value, timestamp)], [], [])
    assert stores.rows("SELECT step, timestamp, value FROM latest_metrics") == [(5, 11, 0.7)]


async def test_waits_while_another_process_holds_the_write_lock(stores: Stores) -> None:
    run_id = await new_run(stores)
    other = sqlite3.connect(stores.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    write = asyncio.create_task(stores.logs.log_batch(run_id, [point(7)], [], []))
    await asyncio.sleep(0.3)
    assert not write.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(write, 5)
    assert stores.rows("SELECT step FROM metrics") == [(7,)]


async def test_a_driver_error_is_sqlalchemys_and_rolls_back(stores: Stores) -> None:
    run_id = await new_run(stores)
    with sqlite3.connect(stores.path) as other:
        other.execute("CREATE TRIGGER refuse BEFORE INSERT ON latest_metrics BEGIN SELECT RAISE(ABORT, 'no'); END")
    with pytest.raises(sa.exc.IntegrityError):
        await stores.logs.log_batch(run_id, [point(1)], [], [])
    assert stores.rows("SELECT count(*) FROM metrics") == [(0,)]  # the earlier insert went too
    with sqlite3.connect(stores.path) as other:
        other.execute("DROP TRIGGER refuse")
    await stores.logs.log_batch(run_id, [point(2)], [], [])
    assert stores.rows("SELECT step FROM latest_metrics") == [(2,)]
