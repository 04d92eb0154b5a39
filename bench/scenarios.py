"""The benchmark scenarios. Each one checks what the server stored or returned before its figures count.

A scenario has an untimed `setup(base_url, sizes)` (run once per server; e.g. populating 5,000 runs)
and a timed `measure(base_url, sizes, state, round_no)` (run once per round) that returns its
figures, or raises VerificationFailed / RequestFailed.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import random
import time
from typing import Any, ClassVar

from bench.client import (
    Client,
    RequestFailed,
    VerificationFailed,
    latency_summary,
    now_ms,
    with_clients,
)


@dataclasses.dataclass(frozen=True)
class Sizes:
    rounds: int  # measured rounds per scenario (median reported), servers alternating
    startups: int  # cold starts per server for time-to-ready / idle memory (median)
    create_sequential: int  # runs created one after another
    create_concurrent: int  # runs per client, 16 clients
    log_metric_per_client: int  # log-metric calls per client, 16 clients
    log_batches: int  # log-batch calls of 1000 metrics each
    search_runs: int  # runs in the searched experiment
    search_queries: int  # timed searches per round
    history_points: int  # points of the one metric fetched with get-history
    burst_seconds: float  # duration of the 64-client create_run burst
    concurrency: int = 16
    burst_clients: int = 64


FULL = Sizes(
    rounds=3,
    startups=3,
    create_sequential=500,  # 100 took trackgate 0.1 s: one hiccup moved it
    create_concurrent=25,
    log_metric_per_client=50,
    log_batches=20,
    search_runs=5000,
    search_queries=10,
    history_points=100_000,
    burst_seconds=20,
)
QUICK = Sizes(
    rounds=1,
    startups=1,
    create_sequential=30,
    create_concurrent=10,
    log_metric_per_client=20,
    log_batches=3,
    search_runs=300,
    search_queries=5,
    history_points=10_000,
    burst_seconds=4,
)
# For the smoke test: a handful of requests per scenario, enough to exercise every check.
SMOKE = Sizes(
    rounds=1,
    startups=1,
    create_sequential=3,
    create_concurrent=2,
    log_metric_per_client=3,
    log_batches=2,
    search_runs=40,
    search_queries=2,
    history_points=2500,
    burst_seconds=1,
    concurrency=4,
    burst_clients=8,
)

_experiment_counter = 0


async def new_experiment(client: Client, label: str) -> str:
    global _experiment_counter
    _experiment_counter += 1
    return await client.create_experiment(f"bench-{label}-{_experiment_counter}-{time.time_ns()}")


async def verify_runs_in_experiment(
    client: Client, experiment_id: str, acked: set[str], exact: bool = True
) -> dict[str, int]:
    """Every acknowledged run is stored (and, if exact, nothing else is)."""
    stored = {r["info"]["run_id"] for r in await client.search_runs([experiment_id], max_results=1000)}
    missing = acked - stored
    if missing:
        raise VerificationFailed(
            f"{len(missing)} acknowledged runs missing from runs/search, e.g. {min(missing)}"
        )
    if exact and stored != acked:
        raise VerificationFailed(f"runs/search returned {len(stored - acked)} runs never created")
    return {"stored_runs": len(stored), "unacknowledged_stored": len(stored - acked)}


def _metric_value(i: int, step: int) -> float:
    return i + step / 7


def _close(a: Any, b: float) -> bool:
    return isinstance(a, (int, float)) and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def verify_history(points: list[dict[str, Any]], steps: int, value_of, label: str) -> None:
    if len(points) != steps:
        raise VerificationFailed(f"{label}: history has {len(points)} points, expected {steps}")
    seen = {}
    for p in points:
        seen[int(p["step"])] = p["value"]
    if len(seen) != steps or min(seen) != 0 or max(seen) != steps - 1:
        raise VerificationFailed(f"{label}: history steps are not exactly 0..{steps - 1}")
    bad = [s for s, v in seen.items() if not _close(v, value_of(s))]
    if bad:
        raise VerificationFailed(f"{label}: {len(bad)} points with wrong values, e.g. step {bad[0]}")


async def warm_up(base_url: str, clients: int = 16, iterations: int = 3) -> None:
    """Untimed: touch every endpoint the scenarios use from several connections, so that lazy imports
    and first-request work in every server worker process are not billed to the first scenario."""
    async with Client(base_url) as admin:
        exp = await new_experiment(admin, "warmup")

    async def work(c: int, client: Client):
        ts = now_ms()
        for i in range(iterations):
            rid = (await client.create_run(exp, f"w{c}-{i}"))[0]["run_id"]
            await client.log_metric(rid, "x", 1.0, 0, ts)
            await client.log_batch(
                rid,
                metrics=[{"key": "y", "value": 1.0, "timestamp": ts, "step": s} for s in range(10)],
                params=[{"key": "p", "value": "1"}],
                tags=[{"key": "t", "value": "1"}],
            )
            await client.get_metric_history(rid, "y")
            await client.search_runs([exp], "metrics.y > 0 and params.p = '1'")

    await with_clients(base_url, clients, work)


class Scenario(abc.ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    max_rounds: ClassVar[int | None] = None  # cap on Sizes.rounds for long scenarios

    async def setup(self, base_url: str, sizes: Sizes) -> tuple[Any, dict[str, float]]:
        """(state handed to measure, untimed-setup figures for the record)."""
        return None, {}

    @abc.abstractmethod
    async def measure(self, base_url: str, sizes: Sizes, state: Any, round_no: int) -> dict[str, float]:
        """One measured round: its figures."""


class CreateRunSequential(Scenario):
    name = "create_seq"
    title = "create_run, 1 client"

    async def measure(self, base_url, sizes, state, round_no):
        async with Client(base_url) as client:
            exp = await new_experiment(client, self.name)
            acked, latencies = set(), []
            started = time.perf_counter()
            for i in range(sizes.create_sequential):
                info, seconds = await client.create_run(exp, f"seq-{i}")
                acked.add(info["run_id"])
                latencies.append(seconds)
            elapsed = time.perf_counter() - started
            checks = await verify_runs_in_experiment(client, exp, acked)
        if len(acked) != sizes.create_sequential:
            raise VerificationFailed("runs/create returned duplicate run ids")
        return {"runs_per_s": len(acked) / elapsed, **latency_summary(latencies), **checks}


class CreateRunConcurrent(Scenario):
    name = "create_c16"
    title = "create_run, 16 clients"

    async def measure(self, base_url, sizes, state, round_no):
        async with Client(base_url) as admin:
            exp = await new_experiment(admin, self.name)

        async def work(c: int, client: Client):
            out = []
            for i in range(sizes.create_concurrent):
                info, seconds = await client.create_run(exp, f"c{c}-{i}")
                out.append((info["run_id"], seconds))
            return out

        started = time.perf_counter()
        results = await with_clients(base_url, sizes.concurrency, work)
        elapsed = time.perf_counter() - started
        flat = [x for per in results for x in per]
        acked = {rid for rid, _ in flat}
        if len(acked) != len(flat):
            raise VerificationFailed("runs/create returned duplicate run ids")
        async with Client(base_url) as admin:
            checks = await verify_runs_in_experiment(admin, exp, acked)
        return {"runs_per_s": len(flat) / elapsed, **latency_summary([s for _, s in flat]), **checks}


class LogMetricConcurrent(Scenario):
    name = "log_metric_c16"
    title = "log_metric, 16 clients"

    async def measure(self, base_url, sizes, state, round_no):
        n = sizes.log_metric_per_client
        async with Client(base_url) as admin:
            exp = await new_experiment(admin, self.name)
            run_ids = [
                (await admin.create_run(exp, f"lm-{c}"))[0]["run_id"] for c in range(sizes.concurrency)
            ]
        base_ts = now_ms()

        async def work(c: int, client: Client):
            rid = run_ids[c]
            return [
                await client.log_metric(rid, "loss", _metric_value(c, s), s, base_ts + s) for s in range(n)
            ]

        started = time.perf_counter()
        results = await with_clients(base_url, sizes.concurrency, work)
        elapsed = time.perf_counter() - started
        latencies = [s for per in results for s in per]

        checkers = min(4, sizes.concurrency)

        async def check(k: int, client: Client):
            for c in range(k, sizes.concurrency, checkers):
                points = await client.get_metric_history(run_ids[c], "loss")
                verify_history(points, n, lambda s, c=c: _metric_value(c, s), f"run {c}")

        await with_clients(base_url, checkers, check)
        return {"req_per_s": len(latencies) / elapsed, **latency_summary(latencies)}


class LogBatch(Scenario):
    name = "log_batch"
    title = "log_batch of 1000 metrics, 1 client"
    KEYS = 10
    STEPS_PER_BATCH = 100  # 10 keys x 100 steps = 1000 metrics per request

    async def measure(self, base_url, sizes, state, round_no):
        async with Client(base_url) as client:
            exp = await new_experiment(client, self.name)
            rid = (await client.create_run(exp, "batch"))[0]["run_id"]
            base_ts = now_ms()
            bodies = []
            for b in range(sizes.log_batches):
                metrics = []
                for j in range(self.STEPS_PER_BATCH):
                    step = b * self.STEPS_PER_BATCH + j
                    for k in range(self.KEYS):
                        metrics.append(
                            {
                                "key": f"m{k}",
                                "value": _metric_value(k, step),
                                "timestamp": base_ts + step,
                                "step": step,
                                "run_id": rid,
                            }
                        )
                bodies.append(metrics)
            latencies = []
            started = time.perf_counter()
            for metrics in bodies:
                latencies.append(await client.log_batch(rid, metrics=metrics))
            elapsed = time.perf_counter() - started
            total_steps = sizes.log_batches * self.STEPS_PER_BATCH
            for k in range(self.KEYS):
                points = await client.get_metric_history(rid, f"m{k}")
                verify_history(points, total_steps, lambda s, k=k: _metric_value(k, s), f"key m{k}")
        return {"metrics_per_s": sizes.log_batches * 1000 / elapsed, **latency_summary(latencies)}


class SearchRuns(Scenario):
    name = "search"
    title = "search_runs with a filter"
    FILTER = "metrics.acc > 0.5 and params.lr = '0.01'"
    # Checked once after populating (untimed), so the grammar is exercised beyond the timed filter.
    EXTRA_FILTERS: ClassVar[list[str]] = [
        "params.lr = '0.1' and tags.team = 't2'",
        "metrics.loss <= 0.25 and params.optimizer = 'adam'",
    ]
    LRS = ("0.1", "0.01", "0.001")

    @staticmethod
    def _run_data(i: int) -> dict[str, Any]:
        rng = random.Random(i)
        acc = round(rng.random(), 6)
        if acc == 0.5:
            acc = 0.500001
        return {
            "lr": SearchRuns.LRS[i % 3],
            "batch_size": str(32 * (1 + i % 4)),
            "optimizer": "adam" if i % 5 < 3 else "sgd",
            "acc": acc,
            "loss": round(1 - acc, 6),
            "team": f"t{i % 4}",
        }

    @classmethod
    def _matches(cls, filter_string: str, d: dict[str, Any]) -> bool:
        if filter_string == cls.FILTER:
            return d["acc"] > 0.5 and d["lr"] == "0.01"
        if filter_string == cls.EXTRA_FILTERS[0]:
            return d["lr"] == "0.1" and d["team"] == "t2"
        if filter_string == cls.EXTRA_FILTERS[1]:
            return d["loss"] <= 0.25 and d["optimizer"] == "adam"
        raise KeyError(filter_string)

    async def setup(self, base_url, sizes):
        async with Client(base_url) as admin:
            exp = await new_experiment(admin, self.name)
        data: dict[str, dict[str, Any]] = {}
        ts = now_ms()

        async def work(c: int, client: Client):
            for i in range(c, sizes.search_runs, sizes.concurrency):
                d = self._run_data(i)
                info, _ = await client.create_run(exp, f"s-{i}", extra_tags=[("team", d["team"])])
                rid = info["run_id"]
                await client.log_batch(
                    rid,
                    metrics=[
                        {"key": "acc", "value": d["acc"], "timestamp": ts, "step": 0},
                        {"key": "loss", "value": d["loss"], "timestamp": ts, "step": 0},
                        {"key": "epoch", "value": 10.0, "timestamp": ts, "step": 0},
                    ],
                    params=[{"key": k, "value": d[k]} for k in ("lr", "batch_size", "optimizer")],
                    tags=[{"key": "stage", "value": "bench"}],
                )
                data[rid] = d

        started = time.perf_counter()
        await with_clients(base_url, sizes.concurrency, work)
        elapsed = time.perf_counter() - started
        state = {"experiment_id": exp, "data": data}
        async with Client(base_url) as client:
            for f in self.EXTRA_FILTERS:
                await self._search_verified(client, state, f)
        return state, {"populate_runs_per_s": sizes.search_runs / elapsed, "populate_s": elapsed}

    async def _search_verified(self, client: Client, state: dict[str, Any], filter_string: str) -> int:
        runs = await client.search_runs([state["experiment_id"]], filter_string)
        got = [r["info"]["run_id"] for r in runs]
        expected = {rid for rid, d in state["data"].items() if self._matches(filter_string, d)}
        if len(got) != len(set(got)) or set(got) != expected:
            raise VerificationFailed(
                f"runs/search {filter_string!r}: {len(set(got) - expected)} unexpected, "
                f"{len(expected - set(got))} missing of {len(expected)}"
            )
        for r in runs[:50]:  # the returned runs carry their data, as the client expects
            d = state["data"][r["info"]["run_id"]]
            params = {p["key"]: p["value"] for p in r.get("data", {}).get("params", [])}
            metrics = {m["key"]: m["value"] for m in r.get("data", {}).get("metrics", [])}
            if params.get("lr") != d["lr"] or not _close(metrics.get("acc"), d["acc"]):
                raise VerificationFailed(f"runs/search returned wrong data for {r['info']['run_id']}")
        return len(got)

    async def measure(self, base_url, sizes, state, round_no):
        latencies, matched = [], 0
        async with Client(base_url) as client:
            for _ in range(sizes.search_queries):
                started = time.perf_counter()
                matched = await self._search_verified(client, state, self.FILTER)
                latencies.append(time.perf_counter() - started)
        return {**latency_summary(latencies), "matched_runs": matched}


class MetricHistory(Scenario):
    name = "history"
    title = "get-history of one metric (all pages)"

    async def setup(self, base_url, sizes):
        async with Client(base_url) as client:
            exp = await new_experiment(client, self.name)
            rid = (await client.create_run(exp, "history"))[0]["run_id"]
            base_ts = now_ms()
            started = time.perf_counter()
            for start in range(0, sizes.history_points, 1000):
                await client.log_batch(
                    rid,
                    metrics=[
                        {"key": "h", "value": _metric_value(0, s), "timestamp": base_ts + s, "step": s}
                        for s in range(start, min(start + 1000, sizes.history_points))
                    ],
                )
            elapsed = time.perf_counter() - started
        return rid, {"populate_metrics_per_s": sizes.history_points / elapsed}

    async def measure(self, base_url, sizes, state, round_no):
        rid = state
        async with Client(base_url) as client:
            started = time.perf_counter()
            points = await client.get_metric_history(rid, "h")
            elapsed = time.perf_counter() - started
        verify_history(points, sizes.history_points, lambda s: _metric_value(0, s), "history")
        return {"seconds": elapsed, "points": len(points)}


class CreateRunBurst(Scenario):
    name = "burst_c64"
    title = "create_run, 64 clients for a fixed time"
    max_rounds = 1

    async def measure(self, base_url, sizes, state, round_no):
        async with Client(base_url) as admin:
            exp = await new_experiment(admin, self.name)
        deadline = time.perf_counter() + sizes.burst_seconds
        errors: dict[str, int] = {}
        samples: dict[str, str] = {}

        async def work(c: int, client: Client):
            done, i = [], 0
            while time.perf_counter() < deadline:
                i += 1
                try:
                    info, seconds = await client.create_run(exp, f"b{c}-{i}")
                    done.append((info["run_id"], seconds))
                except RequestFailed as exc:
                    kind = f"HTTP {exc.status}" if exc.status else str(exc).split(":")[1].strip()
                    errors[kind] = errors.get(kind, 0) + 1
                    samples.setdefault(kind, str(exc)[:300])
                    done.append((None, exc.seconds))
            return done

        started = time.perf_counter()
        results = await with_clients(base_url, sizes.burst_clients, work)
        elapsed = time.perf_counter() - started
        flat = [x for per in results for x in per]
        acked = {rid for rid, _ in flat if rid}
        async with Client(base_url) as admin:
            checks = await verify_runs_in_experiment(admin, exp, acked, exact=False)
        return {
            "runs_per_s": len(acked) / elapsed,
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "error_samples": samples,
            "elapsed_s": elapsed,
            **latency_summary([s for _, s in flat]),
            **checks,
        }


SCENARIOS: list[Scenario] = [
    CreateRunSequential(),
    CreateRunConcurrent(),
    LogMetricConcurrent(),
    LogBatch(),
    SearchRuns(),
    MetricHistory(),
    CreateRunBurst(),
]
