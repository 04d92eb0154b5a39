"""Authorization overhead, in process: the tracking core with authorization on vs off.

    python -m bench.bench_authz            # 5 rounds (--rounds N for more)
    python -m bench.bench_authz --quick    # 1 round, fewer runs

Two cores on one fresh SQLite file (one with authorization on, as when the gateway
authenticates; one with it off), sent the same requests with the same identity headers, so only
authorization's own work differs. Figures:
- log_metric, 16 concurrent clients back to back, as a non-admin editor whose EDIT comes from a
  role (by group), vs the same traffic with authorization off (target: within 5 %);
- search_runs over 5,000 runs in 10 experiments, one 1,000-run page, as a non-admin with role
  grants and a DENY vs as an admin (target: at most 20 % more).
Rounds alternate the modes so a busy machine slows them alike; medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer

from tracking_core.app import build_app
from tracking_core.contract import Identity, identity_headers
from tracking_core.settings import CoreSettings
from tracking_core.store import schema
from tracking_core.store.database import Database, create_engine
from tracking_core.store.tables import runs

CLIENTS = 16
ADMIN = "root"
EDITOR = Identity("editor", "basic", groups=("trainers",))
READER = Identity("analyst", "basic", groups=("analysts",))


@functools.cache
def _headers(identity: Identity | None) -> dict[str, str]:
    return identity_headers(identity) if identity else {}


async def _call(client: TestClient, path: str, body: dict[str, Any], who: Identity | None) -> Any:
    url = path if path.startswith("/") else f"/api/2.0/mlflow/{path}"
    resp = await client.post(url, json=body, headers=_headers(who))
    data = await resp.json()
    if resp.status != 200:
        raise RuntimeError(f"{path}: {resp.status} {data}")
    return data


async def _seed(uri: str, secured: TestClient, n_runs: int) -> list[str]:
    admin = Identity(ADMIN, "basic")
    ids = [(await _call(secured, "experiments/create", {"name": f"bench-{i}-{uuid.uuid4().hex[:6]}"}, admin))
           ["experiment_id"] for i in range(10)]
    for role, grants in (("trainers", [(e, "EDIT") for e in ids]),
                         ("analysts", [(e, "READ") for e in ids[:8]] + [(ids[8], "DENY")])):
        made = await _call(secured, "/api/3.0/mlflow/roles/create", {"workspace": "default", "name": role}, admin)
        for e, permission in grants:
            await _call(secured, "/api/3.0/mlflow/roles/permissions/add", {
                "role_id": made["role"]["id"], "resource_type": "experiment", "resource_pattern": e,
                "permission": permission}, admin)
    db = Database(create_engine(CoreSettings(backend_store_uri=uri)))
    rows = [dict(run_id=uuid.uuid4().hex, experiment_id=int(ids[i % 10]), name=f"r{i}", user_id="seed",
                 status="FINISHED", start_time=i, lifecycle_stage="active", artifact_uri="/tmp/x")
            for i in range(n_runs)]
    async with db.write() as conn:
        await conn.execute(sa.insert(runs), rows)
    await db.close()
    return ids


async def _log_metric_rate(client: TestClient, experiment: str, who: Identity | None,
                           seconds: float) -> tuple[float, float]:
    """Requests per second, and the process's CPU microseconds per request (clients and core)."""
    run_ids = [(await _call(client, "runs/create", {"experiment_id": experiment}, who))["run"]["info"]["run_id"]
               for _ in range(CLIENTS)]
    counts = [0] * CLIENTS
    deadline = time.perf_counter() + seconds

    async def work(i: int) -> None:
        step = 0
        while time.perf_counter() < deadline:
            await _call(client, "runs/log-metric", {"run_id": run_ids[i], "key": "loss", "value": 1.0,
                                                    "step": step, "timestamp": int(time.time() * 1000)}, who)
            step += 1
            counts[i] += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(work(i) for i in range(CLIENTS)))
    done = sum(counts)
    return done / (time.perf_counter() - started), (time.process_time() - cpu) / done * 1e6


async def _search_ms(client: TestClient, ids: list[str], who: Identity, repeat: int) -> tuple[float, int]:
    times, found = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        out = await _call(client, "runs/search", {"experiment_ids": ids, "max_results": 1000}, who)
        times.append((time.perf_counter() - started) * 1000)
        found = len(out.get("runs", []))
    return statistics.median(times), found


async def main(rounds: int, seconds: float, n_runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/bench.db"
        await schema.prepare(CoreSettings(backend_store_uri=uri))
        on = CoreSettings(backend_store_uri=uri, auth=("basic",), admin_users=(ADMIN,))
        off = CoreSettings(backend_store_uri=uri)
        secured, open_ = TestClient(TestServer(build_app(on))), TestClient(TestServer(build_app(off)))
        await secured.start_server()
        await open_.start_server()
        try:
            ids = await _seed(uri, secured, n_runs)
            load_before = os.getloadavg()
            rates: dict[str, list[float]] = {"off": [], "editor": []}
            cpu: dict[str, list[float]] = {"off": [], "editor": []}
            search: dict[str, list[float]] = {"admin": [], "role_grants": []}
            counts: dict[str, int] = {}
            for r in range(rounds):
                # The same traffic: the gateway sends the caller's identity whether or not the core
                # authorizes, so both cores get (and parse) the same headers.
                order = [("off", open_, EDITOR), ("editor", secured, EDITOR)]
                for name, client, who in order if r % 2 == 0 else reversed(order):
                    rate, us = await _log_metric_rate(client, ids[9], who, seconds)
                    rates[name].append(rate)
                    cpu[name].append(us)
                for name, who in (("admin", Identity(ADMIN, "basic")), ("role_grants", READER)):
                    ms, counts[name] = await _search_ms(secured, ids, who, 5)
                    search[name].append(ms)
            load_after = os.getloadavg()
        finally:
            await secured.close()
            await open_.close()
    med = {k: statistics.median(v) for k, v in {**rates, **search}.items()}
    return {
        "log_metric_per_s": {"authz_off": med["off"], "editor_authz_on": med["editor"],
                             "ratio": med["editor"] / med["off"], "rounds": rates,
                             # Each round ran both modes back to back: the median of those pairs'
                             # ratios is steadier than the ratio of medians when the machine drifts.
                             "paired_ratio": statistics.median(e / o for e, o in zip(rates["editor"], rates["off"],
                                                                                     strict=True))},
        # The steadier figure on a busy machine: CPU per request, whole process (clients and core).
        "log_metric_cpu_us": {"authz_off": statistics.median(cpu["off"]),
                              "editor_authz_on": statistics.median(cpu["editor"]), "rounds": cpu},
        "search_runs_ms": {"admin": med["admin"], "role_grants": med["role_grants"],
                           "ratio": med["role_grants"] / med["admin"], "runs_returned": counts},
        "load_average": {"before": load_before, "after": load_after},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(main(1 if args.quick else args.rounds, 2.0 if args.quick else 6.0, 5000))
    lm, sr, cu = result["log_metric_per_s"], result["search_runs_ms"], result["log_metric_cpu_us"]
    load = result["load_average"]
    print(f"load average {load['before'][0]:.2f} before, {load['after'][0]:.2f} after")
    print(f"log_metric, {CLIENTS} clients: authz off {lm['authz_off']:.0f}/s, non-admin editor "
          f"{lm['editor_authz_on']:.0f}/s (ratio {lm['ratio']:.3f}, median of the rounds' ratios "
          f"{lm['paired_ratio']:.3f}; target >= 0.95)")
    rounds = (f"{k} " + ", ".join(f"{v:.0f}" for v in vs) for k, vs in lm["rounds"].items())
    print("  rounds, req/s: " + "; ".join(rounds))
    print(f"  CPU per request (process: clients and core): authz off {cu['authz_off']:.0f} us, editor "
          f"{cu['editor_authz_on']:.0f} us (off/on {cu['authz_off'] / cu['editor_authz_on']:.3f})")
    rounds = (f"{k} " + ", ".join(f"{v:.0f}" for v in vs) for k, vs in cu["rounds"].items())
    print("  rounds, CPU us per request: " + "; ".join(rounds))
    print(f"search_runs, 5,000 runs, 1,000 per page: admin {sr['admin']:.1f} ms, non-admin with role grants "
          f"{sr['role_grants']:.1f} ms (ratio {sr['ratio']:.3f}; target <= 1.20); returned {sr['runs_returned']}")
