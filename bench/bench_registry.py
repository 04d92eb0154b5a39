"""Registry search side by side: `trackgate server` next to `mlflow server`, same SQLite backend type.

    python -m bench.bench_registry                 # 1,000 models x 5 versions, 3 rounds (~5 min)
    python -m bench.bench_registry --quick         # 100 models, 1 round (< 1 min)

Each server gets its own fresh SQLite file (bench/servers.py starts them). Untimed setup: the same
registered models (tags `team`, `owner`) and versions (tags `team`, `validated`) created over REST
by 8 clients, the bodies the mlflow client sends. Timed, one client, sequential calls, servers
alternating every round:

- `rm_tag`: `registered-models/search` `tags.team = 'vision'`, the client's default page (100);
- `rm_tag_all`: the same filter, every page of 1000 (what `mlflow.search_registered_models` reads);
- `mv_tag`: `model-versions/search` `tags.validated = 'yes'` with `max_results=10000`, as
  `MlflowClient.search_model_versions` sends it.

Every answer is checked against the data sent (names, versions, no duplicates, latest versions)
before its time counts. The table gives medians and the ratio mlflow / trackgate.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/bench_registry.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.client import Client, VerificationFailed, percentile, with_clients
from bench.servers import MLFLOW, MLFLOW_W1, TRACKGATE, ServerProcess

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SPECS = {s.name: s for s in (TRACKGATE, MLFLOW, MLFLOW_W1)}
TEAMS = ("vision", "nlp", "tabular", "audio")
POPULATE_CLIENTS = 8

Query = Callable[[Client, int, int], Awaitable[int]]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def model_name(i: int) -> str:
    return f"bench-model-{i:05d}"


async def populate(base_url: str, models: int, versions: int) -> float:
    """Create the registry; returns seconds taken (untimed for the ratios, reported)."""
    started = time.perf_counter()

    async def work(c: int, client: Client) -> None:
        for i in range(c, models, POPULATE_CLIENTS):
            team = TEAMS[i % len(TEAMS)]
            tags = [{"key": "team", "value": team}, {"key": "owner", "value": f"user{i % 10}"}]
            await client.call("POST", "registered-models/create", {"name": model_name(i), "tags": tags})
            for v in range(1, versions + 1):
                body = {
                    "name": model_name(i),
                    "source": f"s3://bench-bucket/models/{i}/{v}",
                    "run_id": f"{i:016x}{v:016x}",
                    "tags": [
                        {"key": "team", "value": team},
                        {"key": "validated", "value": "yes" if v == versions else "no"},
                    ],
                }
                answer, _ = await client.call("POST", "model-versions/create", body)
                got = answer.get("model_version", {})
                if got.get("version") != str(v) or got.get("status") != "READY":
                    raise VerificationFailed(f"model-versions/create answered {got}")

    await with_clients(base_url, POPULATE_CLIENTS, work)
    return time.perf_counter() - started


async def search_models(client: Client, filter_: str, max_results: int | None, all_pages: bool) -> list[Any]:
    found: list[Any] = []
    token = None
    while True:
        params = [("filter", filter_)]
        if max_results:
            params.append(("max_results", str(max_results)))
        if token:
            params.append(("page_token", token))
        answer, _ = await client.call("GET", "registered-models/search", params=params)
        page, token = answer.get("registered_models", []), answer.get("next_page_token")
        if token and not page:
            raise VerificationFailed("registered-models/search: an empty page with a next_page_token")
        found.extend(page)
        if not token or not all_pages:
            return found


def check_models(found: list[Any], expected: list[str], versions: int) -> None:
    names = [m["name"] for m in found]
    if names != expected:
        raise VerificationFailed(f"registered-models/search: {len(names)} names, expected {len(expected)}")
    for m in found:
        latest = [v["version"] for v in m.get("latest_versions", [])]
        if latest != [str(versions)] or {"key": "team", "value": "vision"} not in m.get("tags", []):
            raise VerificationFailed(f"registered-models/search: {m['name']} came back as {m}")


def queries(models: int, versions: int) -> dict[str, Query]:
    vision = sorted(model_name(i) for i in range(models) if TEAMS[i % len(TEAMS)] == "vision")

    async def rm_tag(client: Client, _m: int, _v: int) -> int:
        found = await search_models(client, "tags.team = 'vision'", None, all_pages=False)
        check_models(found, vision[:100], versions)
        return len(found)

    async def rm_tag_all(client: Client, _m: int, _v: int) -> int:
        found = await search_models(client, "tags.team = 'vision'", 1000, all_pages=True)
        check_models(found, vision, versions)
        return len(found)

    async def mv_tag(client: Client, _m: int, _v: int) -> int:
        params = [("filter", "tags.validated = 'yes'"), ("max_results", "10000")]
        answer, _ = await client.call("GET", "model-versions/search", params=params)
        got = sorted((v["name"], v["version"]) for v in answer.get("model_versions", []))
        if got != [(model_name(i), str(versions)) for i in range(models)] or answer.get("next_page_token"):
            raise VerificationFailed(f"model-versions/search: {len(got)} versions, expected {models}")
        return len(got)

    return {"rm_tag": rm_tag, "rm_tag_all": rm_tag_all, "mv_tag": mv_tag}


async def time_query(
    base_url: str, query: Query, n: int, models: int, versions: int
) -> tuple[list[float], int]:
    seconds, rows = [], 0
    async with Client(base_url) as client:
        for _ in range(n):
            started = time.perf_counter()
            rows = await query(client, models, versions)
            seconds.append(time.perf_counter() - started)
    return seconds, rows


async def warm_up(base_url: str, all_queries: dict[str, Query], models: int, versions: int) -> None:
    """Untimed: every query from several connections, so each server worker process has done it once."""

    async def work(_c: int, client: Client) -> None:
        for query in all_queries.values():
            await query(client, models, versions)

    await with_clients(base_url, 8, work)


async def main_async(args: argparse.Namespace) -> int:
    specs = [SPECS[name] for name in args.servers.split(",")]
    all_queries = queries(args.models, args.versions)
    results: dict[str, Any] = {"models": args.models, "versions": args.versions, "servers": {}}
    with tempfile.TemporaryDirectory(prefix="tg-bench-registry-") as tmp:
        servers = {s.name: ServerProcess(s, Path(tmp) / s.name) for s in specs}
        try:
            for name, server in servers.items():
                log(f"{name}: ready in {await server.start():.1f} s; populating")
                took = await populate(server.base_url, args.models, args.versions)
                log(f"{name}: {args.models} models x {args.versions} versions in {took:.1f} s")
                await warm_up(server.base_url, all_queries, args.models, args.versions)
                results["servers"][name] = {"populate_s": took, "queries": {q: [] for q in all_queries}}
            for round_no in range(args.rounds):
                order = specs[round_no % len(specs) :] + specs[: round_no % len(specs)]
                for spec in order:
                    for qname, query in all_queries.items():
                        seconds, rows = await time_query(
                            servers[spec.name].base_url, query, args.queries, args.models, args.versions
                        )
                        results["servers"][spec.name]["queries"][qname] += seconds
                        results["servers"][spec.name].setdefault("rows", {})[qname] = rows
                log(f"round {round_no + 1}/{args.rounds} done")
        finally:
            for server in servers.values():
                server.stop()
    print(table(results, [s.name for s in specs]))
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"registry-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
        path.write_text(json.dumps(results, indent=2))
        log(f"saved {path}")
    return 0


def table(results: dict[str, Any], names: list[str]) -> str:
    anchor = "mlflow" if "mlflow" in names else names[-1]
    head = ["query", "rows", *(f"{n} p50 ms (p99)" for n in names)]
    head += [f"{anchor} / {n}" for n in names if n != anchor]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for qname in next(iter(results["servers"].values()))["queries"]:
        medians = {n: statistics.median(results["servers"][n]["queries"][qname]) for n in names}
        cells = [qname, str(results["servers"][names[0]]["rows"][qname])]
        for n in names:
            p99 = percentile(results["servers"][n]["queries"][qname], 99)
            cells.append(f"{medians[n] * 1000:.1f} ({p99 * 1000:.1f})")
        cells += [f"{medians[anchor] / medians[n]:.1f}x" for n in names if n != anchor]
        lines.append("| " + " | ".join(cells) + " |")
    populate = ", ".join(f"{n} {results['servers'][n]['populate_s']:.0f} s" for n in names)
    lines.append(
        f"\nsetup (untimed): {results['models']} models x {results['versions']} versions; {populate}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_registry", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=10, help="timed calls per query, server and round")
    parser.add_argument("--servers", default="trackgate,mlflow", help=f"any of {','.join(SPECS)}")
    parser.add_argument("--quick", action="store_true", help="100 models, 1 round, 5 calls per query")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.rounds, args.queries = 100, 1, 5
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
