"""Scale-out figures: cold start to ready, and throughput of 3 replicas against 1 on PostgreSQL.

    python bench/bench_replicas.py                  # both parts
    python bench/bench_replicas.py --part cold-start --startups 3
    python bench/bench_replicas.py --part throughput --seconds 20 --clients 24

Cold start: process start to the readiness probe's first 200 (`/readyz` for trackgate, `/health`
for `mlflow server`), which is what Cloud Run's scale-from-zero waits for; each server on a fresh
SQLite file and, for trackgate, also on an existing PostgreSQL database (a new instance of a
running service). Throughput: `--clients` simulated training jobs, each creating a run and then
looping log-batch (10 metrics) / log-parameter / set-tag / get-run, spread round-robin over 1, then
3, `trackgate server` replicas sharing one PostgreSQL database; requests per second and the ratio.
Every answer must be 200 and every logged step is counted back at the end. On a machine with
few cores the replicas share the same CPUs, so the ratio says what a replica costs, not what a
bigger machine or more machines would give.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.servers import MLFLOW, TRACKGATE, ServerProcess, ServerSpec
from tests.services import throwaway_postgres

API = "/api/2.0/mlflow"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def cold_start(startups: int, with_mlflow: bool, pg: str) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"trackgate sqlite (new db)": [], "trackgate postgresql (existing db)": []}
    if with_mlflow:
        figures["mlflow sqlite (new db)"] = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(startups):
            runs = [("trackgate sqlite (new db)", TRACKGATE),
                    ("trackgate postgresql (existing db)", ServerSpec("tg-pg", "trackgate", "/readyz", backend_uri=pg))]
            if with_mlflow:
                runs.append(("mlflow sqlite (new db)", MLFLOW))
            for label, spec in runs:
                server = ServerProcess(spec, Path(tmp) / f"{spec.name}-{n}")
                try:
                    seconds = await server.start()
                finally:
                    server.stop()
                if label.startswith("trackgate postgresql") and n == 0:
                    log(f"  {label}: {seconds:.2f} s (first start bootstraps the schema; not counted)")
                    continue
                figures[label].append(seconds)
                log(f"  {label}: {seconds:.2f} s")
    return figures


async def _job(session: aiohttp.ClientSession, urls: list[str], n: int, deadline: float,
               counts: dict[str, int], logged: dict[str, int]) -> None:
    picks = itertools.cycle(urls[n % len(urls):] + urls[: n % len(urls)])

    async def call(method: str, path: str, **kw: Any) -> Any:
        async with session.request(method, next(picks) + API + path, **kw) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise AssertionError(f"{method} {path}: {resp.status} {body}")
            counts["requests"] += 1
            return body

    run = await call("POST", "/runs/create", json={"experiment_id": "0", "start_time": int(time.time() * 1000)})
    run_id = run["run"]["info"]["run_id"]
    step = 0
    while time.monotonic() < deadline:
        metrics = [{"key": "loss", "value": 1.0 / (step + k + 1), "timestamp": int(time.time() * 1000),
                    "step": step + k} for k in range(10)]
        await call("POST", "/runs/log-batch", json={"run_id": run_id, "metrics": metrics})
        step += 10
        await call("POST", "/runs/log-parameter", json={"run_id": run_id, "key": f"p{step}", "value": "x"})
        await call("POST", "/runs/set-tag", json={"run_id": run_id, "key": "phase", "value": str(step)})
        await call("GET", "/runs/get", params={"run_id": run_id})
    logged[run_id] = step


async def throughput(db: str, replicas: int, clients: int, seconds: float, tmp: Path) -> dict[str, Any]:
    servers = [ServerProcess(ServerSpec(f"tg{i}", "trackgate", "/readyz", backend_uri=db), tmp / f"r{replicas}-{i}")
               for i in range(replicas)]
    try:
        await asyncio.gather(*(s.start() for s in servers))
        urls = [s.base_url for s in servers]
        counts = {"requests": 0}
        logged: dict[str, int] = {}
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector) as session:
            started = time.monotonic()
            await asyncio.gather(*(_job(session, urls, n, started + seconds, counts, logged)
                                   for n in range(clients)))
            elapsed = time.monotonic() - started
            for run_id, steps in logged.items():  # nothing acknowledged may be missing
                async with session.get(urls[0] + API + "/metrics/get-history",
                                       params={"run_id": run_id, "metric_key": "loss",
                                               "max_results": "100000"}) as resp:
                    got = len((await resp.json()).get("metrics", []))
                if got != steps:
                    raise AssertionError(f"run {run_id}: {got} of {steps} steps")
        return {"replicas": replicas, "requests": counts["requests"], "seconds": elapsed,
                "rps": counts["requests"] / elapsed}
    finally:
        for s in servers:
            s.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "cold-start", "throughput"], default="all")
    parser.add_argument("--startups", type=int, default=3)
    parser.add_argument("--no-mlflow", action="store_true", help="cold start of trackgate only")
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    if args.part in ("all", "cold-start"):
        log("cold start to ready:")
        with throwaway_postgres() as pg:
            starts = asyncio.run(cold_start(args.startups, not args.no_mlflow, pg))
        results["cold_start_seconds"] = {k: {"median": statistics.median(v), "all": v} for k, v in starts.items() if v}
    if args.part in ("all", "throughput"):
        with tempfile.TemporaryDirectory() as tmp, throwaway_postgres() as db:
            one = asyncio.run(throughput(db, 1, args.clients, args.seconds, Path(tmp)))
            log(f"  1 replica: {one['rps']:.0f} req/s")
            three = asyncio.run(throughput(db, 3, args.clients, args.seconds, Path(tmp)))
            log(f"  3 replicas: {three['rps']:.0f} req/s")
        results["throughput"] = {"one": one, "three": three, "ratio_3_to_1": three["rps"] / one["rps"],
                                 "clients": args.clients}
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
