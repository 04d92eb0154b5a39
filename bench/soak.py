"""Soak: mixed client traffic against `trackgate server` with basic auth on, for a long time.

    python -m bench.soak --minutes 30 [--clients 8] [--backend-uri postgresql://...] [--out soak.json]

Not part of CI. Every 10 s it samples the server's process tree (PSS and private memory, open files) and, on
PostgreSQL, the database's connections; at the end it prints requests per second, latency
percentiles and requests per second held in each 10-minute window, the error count (any non-2xx), and
the first and last samples, which should be flat.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.client import percentile
from bench.servers import ServerProcess, ServerSpec, process_tree, smaps_rollup

API = "/api/2.0/mlflow"
USER, PASSWORD = "soak", "soak-password-1"


def _open_files(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += len(os.listdir(f"/proc/{pid}/fd"))
    return total


async def _db_connections(uri: str | None) -> int | None:
    if not uri or not uri.startswith("postgresql"):
        return None
    import asyncpg

    name = uri.rsplit("/", 1)[1].split("?")[0]
    conn = await asyncpg.connect(uri.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name) or 0)
    finally:
        await conn.close()


def _private_kib(rollup: dict[str, int]) -> int:
    return rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.finished: list[float] = []  # monotonic time each request ended, for the held-rate windows
        self.errors: dict[str, int] = {}

    def add(self, what: str, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        self.finished.append(time.monotonic())
        if not 200 <= status < 300:
            key = f"{what} {status}"
            self.errors[key] = self.errors.get(key, 0) + 1


async def _client(n: int, base: str, experiment_id: str, stats: Stats, stop: asyncio.Event) -> None:
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": auth},
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def call(what: str, method: str, path: str, **kwargs: Any) -> Any:
            started = time.perf_counter()
            async with session.request(method, base + path, **kwargs) as r:
                body = await r.read()
                stats.add(what, r.status, time.perf_counter() - started)
                return json.loads(body) if body and r.content_type == "application/json" else None

        run_id, step = None, 0
        while not stop.is_set():
            if run_id is None or random.random() < 0.01:
                created = await call("create", "POST", API + "/runs/create", json={"experiment_id": experiment_id})
                run_id, step = created["run"]["info"]["run_id"], 0
            now = int(time.time() * 1000)
            batch = [{"key": f"m{k}", "value": random.random(), "timestamp": now, "step": step} for k in range(10)]
            await call("log-batch", "POST", API + "/runs/log-batch", json={"run_id": run_id, "metrics": batch})
            await call("log-metric", "POST", API + "/runs/log-metric",
                       json={"run_id": run_id, "key": "loss", "value": 1 / (step + 1), "timestamp": now, "step": step})
            await call("set-tag", "POST", API + "/runs/set-tag",
                       json={"run_id": run_id, "key": "t", "value": str(step)})
            await call("get", "GET", API + "/runs/get", params={"run_id": run_id})
            await call("history", "GET", API + "/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"})
            if step % 10 == 0:
                await call("search", "POST", API + "/runs/search",
                           json={"experiment_ids": [experiment_id], "max_results": 50, "filter": "metrics.loss < 0.5"})
                path = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/f{n}.txt"
                await call("upload", "PUT", path, data=os.urandom(4096))
                await call("download", "GET", path)
            step += 1


def held_windows(stats: Stats, started: float, elapsed: float, minutes: float) -> list[dict[str, Any]]:
    """Requests per second and p99 over each whole `minutes`-long window of the run (the rate the
    server held, window by window, not just the overall mean)."""
    width = minutes * 60
    windows = []
    for k in range(int(elapsed // width)):
        low, high = started + k * width, started + (k + 1) * width
        inside = [lat for lat, end in zip(stats.latencies, stats.finished, strict=True) if low <= end < high]
        if inside:
            windows.append({"from_min": round(k * minutes), "to_min": round((k + 1) * minutes),
                            "requests_per_second": round(len(inside) / width, 1),
                            "p99_ms": round(percentile(inside, 99) * 1000, 1)})
    return windows


async def soak(minutes: float, clients: int, backend_uri: str | None, workdir: Path) -> dict[str, Any]:
    db = backend_uri or f"sqlite:///{workdir}/soak.db"
    made = subprocess.run([sys.executable, "-m", "gateway.cli", "users", "create", USER, "--admin",
                           "--backend-store-uri", db], input=PASSWORD + "\n", capture_output=True, text=True)
    if made.returncode != 0:
        raise SystemExit(f"users create failed: {made.stderr}")
    spec = ServerSpec("trackgate", "trackgate", "/readyz", ("--auth", "basic"), backend_uri=db)
    server = ServerProcess(spec, workdir)
    await server.start()
    assert server.proc is not None
    samples: list[dict[str, Any]] = []
    stats, stop = Stats(), asyncio.Event()
    try:
        auth = aiohttp.BasicAuth(USER, PASSWORD)
        async with (aiohttp.ClientSession(auth=auth) as session,
                    session.post(server.base_url + API + "/experiments/create", json={"name": "soak"}) as r):
            experiment_id = (await r.json())["experiment_id"]
        tasks = [asyncio.create_task(_client(n, server.base_url, experiment_id, stats, stop)) for n in range(clients)]
        started = time.monotonic()
        while time.monotonic() - started < minutes * 60:
            pids = process_tree(server.proc.pid)
            samples.append({
                "t": round(time.monotonic() - started),
                "requests": len(stats.latencies),
                "pss_mib": round(sum(smaps_rollup(p).get("Pss", 0) for p in pids) / 1024, 1),
                # Private pages only: PSS also moves when other processes on the machine that map the
                # same libraries start or exit; growth of our own memory shows here.
                "uss_mib": round(sum(_private_kib(smaps_rollup(p)) for p in pids) / 1024, 1),
                "open_files": _open_files(pids),
                "db_connections": await _db_connections(backend_uri),
                "errors": sum(stats.errors.values()),
            })
            print(json.dumps(samples[-1]), flush=True)
            await asyncio.sleep(10)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    latencies = stats.latencies
    return {
        "minutes": minutes, "clients": clients, "backend": "postgresql" if backend_uri else "sqlite",
        "requests": len(latencies), "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1), "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "held_10_min": held_windows(stats, started, elapsed, 10),
        "errors": stats.errors, "first_sample": samples[1] if len(samples) > 1 else samples[0],
        "last_sample": samples[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--backend-uri", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trackgate-soak-") as tmp:
        result = asyncio.run(soak(args.minutes, args.clients, args.backend_uri, Path(tmp)))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
