"""`trackgate import-mlflow` speed: metric points per second and peak memory.

Builds an MLflow store (schema created by the real `mlflow` package, runs made by its client,
metric histories bulk-inserted into MLflow's own `metrics` table), then runs the import as a user
does, in a subprocess, and reports points/s and that process's peak RSS. Run twice the size to see
that memory stays flat (it is bounded by --batch-size, not by the source).

    python bench/bench_import.py --points 1000000                    # SQLite -> SQLite
    python bench/bench_import.py --points 1000000 --backend postgresql   # PostgreSQL -> PostgreSQL
    python bench/bench_import.py --points 1000000 --backend mariadb      # MariaDB -> MariaDB
    flock /tmp/trackgate-cpu.lock python bench/bench_import.py ...       # on a shared machine

Target (issue 14): at least 200,000 points/s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.services import PG_ADMIN_URL, throwaway_mariadb, throwaway_postgres  # noqa: E402  (after the path set-up above)

RUNS = 100


def build_source(uri: str, points: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.create_experiment("bench")
    runs = [client.create_run(experiment, run_name=f"r{i}").info.run_id for i in range(RUNS)]
    per_run = points // RUNS
    rows = ((run, "loss", step * 0.001, 1_000 + step, step) for run in runs for step in range(per_run))
    if uri.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(uri[len("sqlite:///") :]) as db:
            db.executemany(
                "INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)", rows
            )
        return
    if uri.startswith("mysql"):
        import sqlalchemy as sa

        engine = sa.create_engine(uri)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO metrics (run_uuid, `key`, value, timestamp, step, is_nan) VALUES (%s, %s, %s, %s, %s, 0)",
                list(rows),
            )
        engine.dispose()
        return
    import asyncio

    import asyncpg

    async def copy() -> None:
        conn = await asyncpg.connect(uri.replace("postgresql://", "postgres://", 1))
        try:
            records = [(*r, False) for r in rows]
            await conn.copy_records_to_table(
                "metrics", records=records, columns=["run_uuid", "key", "value", "timestamp", "step", "is_nan"]
            )
        finally:
            await conn.close()

    asyncio.run(copy())


@contextlib.contextmanager
def plain_owner(target: str) -> Iterator[str]:
    """`target` as its owner, a login that is no superuser (so the per-point key checks stay on)."""
    import asyncio
    import secrets

    import asyncpg

    role, name = f"tg_bench_{secrets.token_hex(4)}", target.rsplit("/", 1)[1]

    async def run(uri: str, sql: str) -> None:
        conn = await asyncpg.connect(uri.replace("postgresql://", "postgres://", 1))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(PG_ADMIN_URL, f'CREATE ROLE {role} LOGIN; ALTER DATABASE "{name}" OWNER TO {role}'))
    try:
        asyncio.run(run(target, f"ALTER SCHEMA public OWNER TO {role}"))
        yield target.replace("postgres@", f"{role}@", 1)
    finally:
        asyncio.run(run(PG_ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(run(PG_ADMIN_URL, f"DROP ROLE IF EXISTS {role}"))


@contextlib.contextmanager
def databases(backend: str, workdir: Path, as_owner: bool = False) -> Iterator[tuple[str, str]]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir}/mlflow.db", f"sqlite:///{workdir}/trackgate.db"
        return
    if backend == "mariadb":
        with throwaway_mariadb() as source, throwaway_mariadb() as target:
            yield source.replace("mysql://", "mysql+pymysql://", 1), target
        return
    with throwaway_postgres() as source, throwaway_postgres() as target:
        if not as_owner:
            yield source, target
            return
        with plain_owner(target) as owned:
            yield source, owned


def measure(source: str, target: str, batch_size: int) -> tuple[float, float, int, str]:
    argv = [
        sys.executable,
        "-m",
        "gateway.cli",
        "import-mlflow",
        "--from",
        source,
        "--to",
        target,
        "--quiet",
        "--batch-size",
        str(batch_size),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKGATE_")}
    # The import runs under a tiny launcher that reports its one child's peak RSS: RUSAGE_CHILDREN
    # here would give the largest child so far (the source builder), and a child forked from a
    # big process counts that process's pages until it execs.
    launcher = (
        "import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
        "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(done.returncode)"
    )
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", launcher, *argv], capture_output=True, text=True, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed:\n{done.stderr}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = int(done.stderr.rsplit("peak_rss_kb", 1)[1].split()[0])
    # CPU seconds of the import process: on a shared machine the wall clock mostly measures the
    # neighbours, CPU time what the import itself costs.
    return elapsed, usage.ru_utime + usage.ru_stime - cpu_before, peak_kb, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "mariadb"), default="sqlite")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--plain-owner",
        action="store_true",
        help="PostgreSQL: import as the target database's owner, no superuser (per-point key checks on).",
    )
    parser.add_argument("--build-only", metavar="URI", help=argparse.SUPPRESS)  # the builder process
    args = parser.parse_args()
    if args.build_only:
        build_source(args.build_only, args.points)
        return 0
    with tempfile.TemporaryDirectory() as tmp, databases(args.backend, Path(tmp), args.plain_owner) as (source, target):
        t0 = time.perf_counter()
        # In its own process: the builder's memory (mlflow, the points) must not count as the import's.
        subprocess.run([sys.executable, __file__, "--points", str(args.points), "--build-only", source], check=True)
        print(
            f"source: {args.points:,} points in {RUNS} runs, built in {time.perf_counter() - t0:.1f} s", file=sys.stderr
        )
        elapsed, cpu, peak_kb, out = measure(source, target, args.batch_size)
    rate = args.points / elapsed
    print(out.strip().splitlines()[-1], file=sys.stderr)
    verdict = "meets" if rate >= 200_000 else "below"
    print(
        f"| {args.backend} -> {args.backend} | {args.points:,} points | {elapsed:.1f} s | {rate:,.0f} points/s "
        f"({verdict} the 200,000 target) | {cpu:.1f} CPU s, {args.points / cpu:,.0f} points/CPU-s "
        f"| peak RSS {peak_kb / 1024:.0f} MiB (batch {args.batch_size:,}) |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
