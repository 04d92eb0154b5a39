"""CPU per hot write operation of the store, in-process (no HTTP): what the core spends on the database.

    python -m bench.store_writes                      # SQLite in a temp dir
    python -m bench.store_writes --uri postgresql://postgres@127.0.0.1:5432/DB   # an existing empty DB

Prints microseconds of process CPU per call (median of rounds) for log_metric, log_param, set_tag,
create_run and update_run, and on non-SQLite backends the statements sent per call, counted with
SQLAlchemy's `before_cursor_execute` event plus the BEGIN/COMMIT/ROLLBACK it issues itself
(log_metric on PostgreSQL runs on the asyncpg connection itself and so shows 0 here; it is one
statement, which `bench/per_request.py` counts in the server's log).
Process CPU, not wall time: on a shared machine it is the figure other work disturbs least.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event

from tracking_core.settings import CoreSettings
from tracking_core.store import schema
from tracking_core.store.database import Database, create_engine
from tracking_core.store.experiments import ExperimentStore
from tracking_core.store.run_writes import MetricPoint, RunLogStore
from tracking_core.store.runs import RunStore


class RoundTrips:
    """Statements and transaction verbs sent to the server (pre-ping included)."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._one)
        for name in ("begin", "commit", "rollback"):
            event.listen(sync, name, self._verb)
        # The pool's pre-ping (a SELECT 1 / ping outside the statement events).
        event.listen(sync.pool, "checkout", self._checkout)
        self.pre_ping = sync.pool._pre_ping  # type: ignore[attr-defined]

    def _one(self, *_: Any, **__: Any) -> None:
        self.count += 1

    def _verb(self, conn: Any, *_: Any) -> None:
        # Autocommit connections send no BEGIN/COMMIT/ROLLBACK, though SQLAlchemy fires the events.
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            self.count += 1

    def _checkout(self, *_: Any) -> None:
        if self.pre_ping:
            self.count += 1


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    uri = args.uri or f"sqlite:///{Path(tmp.name) / 'w.db'}"
    config = CoreSettings(backend_store_uri=uri)
    await schema.prepare(config)
    db = Database(create_engine(config))
    trips = None if db.is_sqlite else RoundTrips(db.engine)
    exps = ExperimentStore(db, config.effective_default_artifact_root)
    runs, logs = RunStore(db), RunLogStore(db)
    exp = int(await exps.create(f"bench-{time.time_ns()}", None, []))
    run_id = (await runs.create(exp, "u", "r", None, []))["info"]["run_id"]
    counter = iter(range(10**9))

    ops: dict[str, Callable[[], Awaitable[Any]]] = {
        "log_metric": lambda: logs.log_batch(
            run_id, [MetricPoint("loss", 0.5, 1_700_000_000_000, next(counter))], [], []),
        "log_param": lambda: logs.log_batch(run_id, [], [(f"p{next(counter)}", "v")], []),
        "set_tag": lambda: logs.log_batch(run_id, [], [], [("t", str(next(counter)))]),
        "create_run": lambda: runs.create(exp, "u", None, None, [("a", "b")]),
        "update_run": lambda: runs.update(run_id, None, next(counter), None),
    }
    results: dict[str, list[float]] = {name: [] for name in ops}
    trips_per: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, op in ops.items():
            for _ in range(50):
                await op()
            before = trips.count if trips else 0
            start = time.process_time()
            for _ in range(args.n):
                await op()
            results[name].append((time.process_time() - start) / args.n * 1e6)
            if trips:
                trips_per[name] = (trips.count - before) / args.n
    print(f"backend: {db.dialect}, {args.n} calls x {args.rounds} rounds, process CPU per call")
    for name, values in results.items():
        extra = f"  round trips/call {trips_per[name]:.1f}" if name in trips_per else ""
        print(f"{name:12s} {statistics.median(values):8.1f} us{extra}")
    await db.close()
    tmp.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
