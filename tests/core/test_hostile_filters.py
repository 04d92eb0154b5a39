"""Issue 13, finding 5: a filter that can never succeed is 400, never the retried 503.

Before the fix, ~1,000 AND clauses (SQLite: "Expression tree is too large") or a 30,000-character
LIKE pattern took seconds and answered 503 with Retry-After, so the mlflow client retried the
expensive query. Now the bounds are checked before any SQL runs, and whatever the database still
refuses is classified by `store.db_errors`: transient → 503, refused → 400.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.core.conftest import Api
from tracking_core.search.parser import MAX_FILTER_CLAUSES, MAX_FILTER_LENGTH, MAX_LIKE_PATTERN_LENGTH
from tracking_core.store.db_errors import Failure, classify


def _and(n: int) -> str:
    return " AND ".join(f"metrics.m{i} > {i}" for i in range(n))


@pytest.mark.parametrize(
    ("filter_", "fragment"),
    [
        (" AND ".join(["metrics.m > 1"] * 1000), f"the limit is {MAX_FILTER_CLAUSES}"),
        (_and(MAX_FILTER_CLAUSES + 1), f"the limit is {MAX_FILTER_CLAUSES}"),
        ("tags.t LIKE '" + "%a" * 15_000 + "'", f"the limit is {MAX_FILTER_LENGTH}"),
        ("tags.t LIKE '" + "%a" * (MAX_LIKE_PATTERN_LENGTH // 2 + 1) + "'", f"the limit is {MAX_LIKE_PATTERN_LENGTH}"),
        ("params.p = 'x' AND " * 2000 + "params.p = 'x'", f"the limit is {MAX_FILTER_LENGTH}"),
    ],
    ids=["1000-and-clauses", "one-clause-too-many", "30000-char-like", "like-pattern-too-long", "long-filter"],
)
async def test_filter_past_its_bounds_is_400_and_fast(api: Api, filter_: str, fragment: str) -> None:
    experiment = await api.new_experiment()
    started = time.monotonic()
    error = await api.post("runs/search", {"experiment_ids": [experiment], "filter": filter_}, expect=400)
    assert time.monotonic() - started < 2
    assert error["error_code"] == "INVALID_PARAMETER_VALUE" and fragment in error["message"]


async def test_filter_at_its_bounds_still_runs(api: Api) -> None:
    experiment = await api.new_experiment()
    run = (await api.new_run(experiment))["info"]["run_id"]
    await api.post("runs/log-batch", {"run_id": run, "metrics": [
        {"key": f"m{i}", "value": i + 1, "timestamp": 1} for i in range(MAX_FILTER_CLAUSES)]})
    found = await api.post("runs/search", {"experiment_ids": [experiment], "filter": _and(MAX_FILTER_CLAUSES)})
    assert [r["info"]["run_id"] for r in found["runs"]] == [run]
    pattern = "%" + "a" * (MAX_LIKE_PATTERN_LENGTH - 2) + "%"
    found = await api.post("runs/search", {"experiment_ids": [experiment], "filter": f"tags.t LIKE '{pattern}'"})
    assert "runs" not in found


def _sqlite_error(path: Path, statement: str) -> sa.exc.DBAPIError:
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
    except sa.exc.DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{statement[:40]} did not fail")


def test_sqlite_refusal_and_lock_are_told_apart(tmp_path: Path) -> None:
    db = tmp_path / "classify.db"
    deep = "SELECT " + " + ".join(["1"] * 1200)  # SQLite: Expression tree is too large
    assert classify(_sqlite_error(db, deep)) is Failure.REFUSED
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE IF NOT EXISTS t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert classify(_sqlite_error(db, "INSERT INTO t VALUES (1)")) is Failure.TRANSIENT
    finally:
        threading.Thread(target=holder.execute, args=("ROLLBACK",)).run()
        holder.close()
    assert classify(sa.exc.TimeoutError("QueuePool limit reached")) is Failure.TRANSIENT
    assert classify(OverflowError("Python int too large to convert to SQLite INTEGER")) is Failure.REFUSED
