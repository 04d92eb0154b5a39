"""Web UI speed, with Playwright timing in Debian's Chromium against `trackgate server`.

    python bench/bench_ui.py                 # 10,000 runs x 50 params x 20 metrics; 1,000,000-point metric
    python bench/bench_ui.py --runs 500 --points 20000   # a quick look
    python bench/bench_ui.py --mlflow --workdir /tmp/bench-ui   # side by side with MLflow's own UI

Figures: time from navigation to the first rows of the runs table (and page weight, bytes
transferred for the whole page), time from navigation to a drawn chart of the long metric.
Each figure is the median of `--rounds` cold page loads (a fresh browser context each time, so no
cache). Each server is measured alone.

Populating (untimed): alone, through trackgate's REST API (log-batch). With `--mlflow`, the data is
written once into MLflow's own SQLite store through `MlflowClient("sqlite:///...")` batch calls
(through `mlflow server` it would take hours), and trackgate gets the very same runs (same ids)
through `trackgate import-mlflow`. `mlflow server` (default workers, then `--workers 1`) serves a
copy of that file. `--workdir` keeps the databases: a second run measures without populating.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.client import Client, with_clients
from bench.servers import MLFLOW, MLFLOW_W1, TRACKGATE, ServerProcess, ServerSpec

CHROMIUM = "/usr/bin/chromium"
CHART_TIMEOUT_MS = 120_000  # a view not shown by then is reported as not shown
RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 1000  # metrics per log-batch (MLflow's limit)
WORKERS = 8


async def populate(base: str, runs: int, params: int, metrics: int, points: int) -> tuple[str, str]:
    async with Client(base) as c:
        experiment_id = (await c.call("POST", "experiments/create", {"name": "ui-bench"}))[0]["experiment_id"]
        long_run = (await c.call("POST", "runs/create", {"experiment_id": experiment_id, "run_name": "long"}))[0]
    long_id = long_run["run"]["info"]["run_id"]
    now = int(time.time() * 1000)

    async def make_runs(i: int, c: Client) -> None:
        for n in range(i, runs, WORKERS):
            run = (
                await c.call(
                    "POST",
                    "runs/create",
                    {"experiment_id": experiment_id, "run_name": f"r{n:05d}", "start_time": now + n},
                )
            )[0]["run"]
            body = {
                "run_id": run["info"]["run_id"],
                "params": [{"key": f"p{k:02d}", "value": str((n * 7 + k) % 97)} for k in range(params)],
                "metrics": [
                    {"key": f"m{k:02d}", "value": (n * 13 + k) % 101 / 100, "timestamp": now, "step": 0}
                    for k in range(metrics)
                ],
            }
            await c.call("POST", "runs/log-batch", body)

    async def long_metric(i: int, c: Client) -> None:
        for start in range(i * BATCH, points, WORKERS * BATCH):
            batch = [
                {"key": "loss", "value": 1 / (s + 1) + (s % 17) / 1000, "timestamp": now + s, "step": s}
                for s in range(start, min(start + BATCH, points))
            ]
            await c.call("POST", "runs/log-batch", {"run_id": long_id, "metrics": batch})

    started = time.perf_counter()
    await with_clients(base, WORKERS, make_runs)
    print(f"populated {runs} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    started = time.perf_counter()
    await with_clients(base, WORKERS, long_metric)
    print(f"logged {points} points in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return experiment_id, long_id


def populate_mlflow_store(db: Path, runs: int, params: int, metrics: int, points: int) -> tuple[str, str]:
    """The same data as `populate`, written into MLflow's own SQLite store by MlflowClient."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    db.parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(f"sqlite:///{db}")
    artifacts = (db.parent / "ml-art").as_uri()
    experiment_id = client.create_experiment("ui-bench", artifact_location=artifacts)
    now = int(time.time() * 1000)
    long_id = client.create_run(experiment_id, run_name="long", start_time=now).info.run_id
    started = time.perf_counter()
    for n in range(runs):
        run_id = client.create_run(experiment_id, run_name=f"r{n:05d}", start_time=now + n).info.run_id
        client.log_batch(
            run_id,
            params=[Param(f"p{k:02d}", str((n * 7 + k) % 97)) for k in range(params)],
            metrics=[Metric(f"m{k:02d}", (n * 13 + k) % 101 / 100, now, 0) for k in range(metrics)],
        )
    print(f"populated {runs} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    started = time.perf_counter()
    for start in range(0, points, BATCH):
        client.log_batch(
            long_id,
            metrics=[
                Metric("loss", 1 / (s + 1) + (s % 17) / 1000, now + s, s)
                for s in range(start, min(start + BATCH, points))
            ],
        )
    print(f"logged {points} points in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return experiment_id, long_id


def import_into_trackgate(mlflow_db: Path, trackgate_db: Path) -> None:
    trackgate_db.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "import-mlflow",
            "--quiet",
            "--from",
            f"sqlite:///{mlflow_db}",
            "--to",
            f"sqlite:///{trackgate_db}",
        ],
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    print(f"imported into trackgate in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def load() -> str:
    """The machine's load averages, as `uptime` reports them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cold_pages(rounds: int) -> Iterator[tuple[Any, list[int]]]:
    """`rounds` pages, each in a fresh browser context (no cache), with the list the bytes of every
    finished request (body and headers) are appended to."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        for _ in range(rounds):
            context = browser.new_context()
            page = context.new_page()
            sizes: list[int] = []
            page.on(
                "requestfinished",
                lambda r, sizes=sizes: sizes.append(r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"]),
            )
            yield page, sizes
            context.close()
        browser.close()


def measure_mlflow(base: str, experiment_id: str, long_id: str, last_run: str, rounds: int) -> dict[str, Any]:
    """The same views in `mlflow server`'s own UI (a single-page app; hash routes). Readiness is
    judged by what a person sees: the newest run's name in the table, and a drawn plotly line on the
    run's model-metrics tab. The app keeps polling (network never idle), so page weight is what was
    transferred by the load event plus one second."""
    table: list[float] = []
    chart: list[float] = []
    weights: list[int] = []
    for page, sizes in cold_pages(rounds):
        started = time.perf_counter()
        try:
            page.goto(f"{base}/#/experiments/{experiment_id}/runs", wait_until="commit")
            page.wait_for_selector(f"text={last_run}", timeout=CHART_TIMEOUT_MS)
            table.append(time.perf_counter() - started)
            page.wait_for_load_state("load")
            page.wait_for_timeout(1000)
            weights.append(sum(sizes))
        except Exception as exc:  # a UI we do not control: report, do not crash
            print(f"mlflow runs table not shown: {exc}", file=sys.stderr)
        # A new document with the app's files in the cache, as trackgate's run page is measured
        # (a hash change inside the loaded app would skip the app's start).
        page.goto("about:blank")
        started = time.perf_counter()
        try:
            page.goto(f"{base}/#/experiments/{experiment_id}/runs/{long_id}/model-metrics", wait_until="commit")
            page.wait_for_selector(".js-plotly-plot path.js-line", timeout=CHART_TIMEOUT_MS)
            chart.append(time.perf_counter() - started)
        except Exception as exc:
            print(f"mlflow chart not drawn: {exc}", file=sys.stderr)
    return {
        "runs_table_first_rows_s": statistics.median(table) if table else None,
        "runs_table_page_bytes": statistics.median(weights) if weights else None,
        "chart_drawn_s": statistics.median(chart) if chart else None,
        "raw": {"table": table, "chart": chart, "bytes": weights},
    }


def measure(base: str, experiment_id: str, long_id: str, rounds: int, expected_rows: int) -> dict[str, Any]:
    table: list[float] = []
    paint: list[float] = []  # the browser's own first-contentful-paint (no harness overhead)
    chart: list[float] = []
    weights: list[int] = []
    for page, sizes in cold_pages(rounds):
        started = time.perf_counter()
        page.goto(f"{base}/experiments/{experiment_id}", wait_until="commit")
        page.wait_for_selector("#runs tbody tr[data-run-id]")
        table.append(time.perf_counter() - started)
        page.wait_for_load_state("load")
        paint.append(page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1") / 1000)
        weights.append(sum(sizes))
        rows = page.locator("#runs tbody tr").count()
        assert rows == min(100, expected_rows), rows
        started = time.perf_counter()
        page.goto(f"{base}/runs/{long_id}", wait_until="commit")
        page.wait_for_selector("#run-chart[data-drawn]", timeout=120_000)
        chart.append(time.perf_counter() - started)
        drawn = int(page.get_attribute("#run-chart", "data-drawn") or 0)
        assert drawn > 100, drawn
    return {
        "runs_table_first_rows_s": statistics.median(table),
        "runs_table_first_paint_s": statistics.median(paint),
        "runs_table_page_bytes": statistics.median(weights),
        "chart_drawn_s": statistics.median(chart),
        "chart_points_drawn": drawn,
        "raw": {"table": table, "paint": paint, "chart": chart, "bytes": weights},
    }


async def paging(workdir: Path, runs: int, page_size: int = 500) -> dict[str, Any]:
    """Every page of an experiment of `runs` runs through the runs table (HTML over HTTP, following
    each page's "Next page" link): seconds per page, first and last, and that every run was shown
    once. The runs are written straight into trackgate's tables (bare rows: populating 100,000 runs
    through the API would take longer than the measurement is worth)."""
    import html
    import re

    import aiohttp
    import sqlalchemy as sa

    from tracking_core.store import tables

    db = workdir / "tg.db"
    server = ServerProcess(TRACKGATE, workdir)
    await server.start()
    try:
        async with Client(server.base_url) as c:
            experiment_id = (await c.call("POST", "experiments/create", {"name": "paging"}))[0]["experiment_id"]
    finally:
        server.stop()
    now = int(time.time() * 1000)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(tables.runs.insert(), [
            {"run_id": f"{n:032x}", "experiment_id": int(experiment_id), "name": f"p{n:06d}", "user_id": "bench",
             "status": "FINISHED", "start_time": now + n, "end_time": now + n + 1000, "lifecycle_stage": "active",
             "artifact_uri": f"file:///tmp/paging/{n:032x}"}
            for n in range(runs)
        ])  # fmt: skip
    engine.dispose()
    next_link = re.compile(r'<a rel="next" href="([^"]+)"')
    row = re.compile(r'<tr data-run-id="([0-9a-f]+)"')
    server = ServerProcess(TRACKGATE, workdir)
    await server.start()
    seconds: list[float] = []
    seen: set[str] = set()
    shown = 0
    try:
        async with aiohttp.ClientSession() as session:
            url: str | None = f"{server.base_url}/experiments/{experiment_id}?max_results={page_size}"
            while url:
                started = time.perf_counter()
                async with session.get(url, headers={"Accept-Encoding": "gzip"}) as response:
                    assert response.status == 200, response.status
                    text = await response.text()
                seconds.append(time.perf_counter() - started)
                ids = row.findall(text)
                shown += len(ids)
                seen.update(ids)
                found = next_link.search(text)
                url = f"{server.base_url}/experiments/{experiment_id}{html.unescape(found.group(1))}" if found else None
    finally:
        server.stop()
    assert shown == len(seen) == runs, (shown, len(seen), runs)
    return {"runs": runs, "page_size": page_size, "pages": len(seconds), "first_page_s": seconds[0],
            "last_page_s": seconds[-1], "median_page_s": statistics.median(seconds), "max_page_s": max(seconds)}


async def measured(spec: ServerSpec, workdir: Path, fn: Any, *args: Any) -> dict[str, Any]:
    """`fn(base_url, *args)` in a thread against a server of `spec` started in `workdir`, alone."""
    server = ServerProcess(spec, workdir)
    await server.start()
    try:
        before = load()
        figures: dict[str, Any] = await asyncio.to_thread(fn, server.base_url, *args)
        return {"load_before": before, "load_after": load(), **figures}
    finally:
        server.stop()


def ratio(theirs: float | None, ours: float) -> str:
    return f"{theirs / ours:.1f}x" if theirs else "n/a"


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--params", type=int, default=50)
    ap.add_argument("--metrics", type=int, default=20)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mlflow", action="store_true", help="also time `mlflow server`'s UI on the same data")
    ap.add_argument("--workdir", type=Path, help="keep the databases here; a second run reuses them (no populating)")
    ap.add_argument("--paging", type=int, metavar="RUNS", help="only page through an experiment of RUNS runs")
    ap.add_argument("--populate-only", action="store_true", help="fill the databases in --workdir, measure nothing")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/ui-<timestamp>.json")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ui-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.paging:
        before = load()
        figures = await paging(Path(tempfile.mkdtemp(prefix="paging-", dir=workdir)), args.paging)
        print(json.dumps({**figures, "load_before": before, "load_after": load()}, indent=2))
        return
    ids_file = workdir / "ids.json"
    sizes = {"runs": args.runs, "params": args.params, "metrics": args.metrics, "points": args.points}
    if ids_file.exists():
        experiment_id, long_id = json.loads(ids_file.read_text())
    elif args.mlflow:
        experiment_id, long_id = await asyncio.to_thread(
            populate_mlflow_store, workdir / "mlflow" / "mlflow.db", *sizes.values()
        )
        import_into_trackgate(workdir / "mlflow" / "mlflow.db", workdir / "trackgate" / "tg.db")
        ids_file.write_text(json.dumps([experiment_id, long_id]))
    else:
        server = ServerProcess(TRACKGATE, workdir / "trackgate")
        await server.start()
        try:
            experiment_id, long_id = await populate(server.base_url, *sizes.values())
        finally:
            server.stop()
        ids_file.write_text(json.dumps([experiment_id, long_id]))
    if args.populate_only:
        return
    result: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sizes": sizes,
        "rounds": args.rounds,
        "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
        "cpus": os.cpu_count(),
    }
    trackgate = TRACKGATE
    if (workdir / "mlflow" / "mlflow.db").exists():  # imported runs keep MLflow's artifact location
        trackgate = dataclasses.replace(TRACKGATE, extra_args=("--artifact-allowed-locations", str(workdir / "mlflow")))
    result["trackgate"] = ours = await measured(
        trackgate, workdir / "trackgate", measure, experiment_id, long_id, args.rounds, args.runs + 1
    )
    print(json.dumps({"trackgate": ours}, indent=2))
    rows = [
        ("runs table, first rows", "runs_table_first_rows_s", 1000, "ms"),
        ("runs table page weight", "runs_table_page_bytes", 1 / 1024, "KiB"),
        ("chart drawn", "chart_drawn_s", 1000, "ms"),
    ]
    if args.mlflow:
        last_run = f"r{args.runs - 1:05d}"
        for spec in (MLFLOW, MLFLOW_W1):
            copy = workdir / spec.name / "mlflow.db"
            if spec.name != "mlflow" and not copy.exists():
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(workdir / "mlflow" / "mlflow.db", copy)
            result[spec.name] = await measured(
                spec, workdir / spec.name, measure_mlflow, experiment_id, long_id, last_run, args.rounds
            )
            print(json.dumps({spec.name: result[spec.name]}, indent=2))
    names = [n for n in ("trackgate", "mlflow", "mlflow-w1") if n in result]
    table = [
        "| figure | " + " | ".join(names) + " | ratio (mlflow / trackgate) |",
        "| --- |" + " --- |" * (len(names) + 1),
    ]
    for label, key, scale, unit in rows:
        cells = [
            f"{result[n][key] * scale:.0f} {unit}" if result[n].get(key) is not None else "not drawn" for n in names
        ]
        ratios = ", ".join(ratio(result[n].get(key), ours[key]) for n in names[1:])
        table.append(f"| {label} | " + " | ".join(cells) + f" | {ratios} |")
    table.append(
        "\nload (1/5/15 min) before/after each: "
        + "; ".join(f"{n} {result[n]['load_before']} / {result[n]['load_after']}" for n in names)
    )
    print("\n" + "\n".join(table))
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"ui-{result['started'].replace(':', '')}.json"
        out.write_text(json.dumps({**result, "table": table}, indent=2))
        print(f"saved {out}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
