"""Web UI speed, with Playwright timing in Debian's Chromium against `trackgate server`.

    python bench/bench_ui.py                 # 10,000 runs x 50 params x 20 metrics; 1,000,000-point metric
    python bench/bench_ui.py --runs 500 --points 20000   # a quick look

Figures: time from navigation to the first rows of the runs table (and page weight, bytes
transferred for the whole page), time from navigation to a drawn chart of the long metric.
Populating goes through the REST API (log-batch), untimed. Each figure is the median of `--rounds`
cold page loads (a fresh browser context each time, so no cache).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.client import Client, with_clients
from bench.servers import MLFLOW, TRACKGATE, ServerProcess

CHROMIUM = "/usr/bin/chromium"
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
            run = (await c.call("POST", "runs/create", {"experiment_id": experiment_id, "run_name": f"r{n:05d}",
                                                          "start_time": now + n}))[0]["run"]
            body = {
                "run_id": run["info"]["run_id"],
                "params": [{"key": f"p{k:02d}", "value": str((n * 7 + k) % 97)} for k in range(params)],
                "metrics": [{"key": f"m{k:02d}", "value": (n * 13 + k) % 101 / 100, "timestamp": now, "step": 0}
                            for k in range(metrics)],
            }
            await c.call("POST", "runs/log-batch", body)

    async def long_metric(i: int, c: Client) -> None:
        for start in range(i * BATCH, points, WORKERS * BATCH):
            batch = [{"key": "loss", "value": 1 / (s + 1) + (s % 17) / 1000, "timestamp": now + s, "step": s}
                     for s in range(start, min(start + BATCH, points))]
            await c.call("POST", "runs/log-batch", {"run_id": long_id, "metrics": batch})

    started = time.perf_counter()
    await with_clients(base, WORKERS, make_runs)
    print(f"populated {runs} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    started = time.perf_counter()
    await with_clients(base, WORKERS, long_metric)
    print(f"logged {points} points in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return experiment_id, long_id


def measure_mlflow(base: str, experiment_id: str, long_id: str, last_run: str, rounds: int) -> dict[str, Any]:
    """The same views in `mlflow server`'s own UI (a single-page app; hash routes). Readiness is
    judged by what a person sees: the newest run's name in the table, and a plot element on the
    run's model-metrics tab."""
    from playwright.sync_api import sync_playwright

    table: list[float] = []
    chart: list[float] = []
    weights: list[int] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        for _ in range(rounds):
            context = browser.new_context()
            page = context.new_page()
            sizes: list[int] = []
            page.on("requestfinished", lambda r, sizes=sizes: sizes.append(r.sizes()["responseBodySize"]
                                                                           + r.sizes()["responseHeadersSize"]))
            started = time.perf_counter()
            page.goto(f"{base}/#/experiments/{experiment_id}/runs", wait_until="commit")
            page.wait_for_selector(f"text={last_run}", timeout=120_000)
            table.append(time.perf_counter() - started)
            page.wait_for_load_state("networkidle")
            weights.append(sum(sizes))
            started = time.perf_counter()
            try:
                page.goto(f"{base}/#/experiments/{experiment_id}/runs/{long_id}/model-metrics", wait_until="commit")
                page.wait_for_selector(".js-plotly-plot, svg.main-svg, canvas", timeout=120_000)
                chart.append(time.perf_counter() - started)
            except Exception as exc:  # a UI we do not control: report, do not crash
                print(f"mlflow chart not detected: {exc}", file=sys.stderr)
            context.close()
        browser.close()
    return {
        "runs_table_first_rows_s": statistics.median(table),
        "runs_table_page_bytes": statistics.median(weights),
        "chart_drawn_s": statistics.median(chart) if chart else None,
        "raw": {"table": table, "chart": chart, "bytes": weights},
    }


def measure(base: str, experiment_id: str, long_id: str, rounds: int, expected_rows: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    table: list[float] = []
    paint: list[float] = []  # the browser's own first-contentful-paint (no harness overhead)
    chart: list[float] = []
    weights: list[int] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        for _ in range(rounds):
            context = browser.new_context()
            page = context.new_page()
            sizes: list[int] = []
            page.on("requestfinished", lambda r, sizes=sizes: sizes.append(r.sizes()["responseBodySize"]
                                                                           + r.sizes()["responseHeadersSize"]))
            started = time.perf_counter()
            page.goto(f"{base}/experiments/{experiment_id}", wait_until="commit")
            page.wait_for_selector("#runs tbody tr[data-run-id]")
            table.append(time.perf_counter() - started)
            page.wait_for_load_state("load")
            paint.append(page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1") / 1000)
            weights.append(sum(sizes))
            rows = page.locator("#runs tbody tr").count()
            assert rows == min(100, expected_rows), rows
            started = time.perf_counter()
            page.goto(f"{base}/runs/{long_id}", wait_until="commit")
            page.wait_for_selector("#run-chart[data-drawn]", timeout=120_000)
            chart.append(time.perf_counter() - started)
            drawn = int(page.get_attribute("#run-chart", "data-drawn") or 0)
            assert drawn > 100, drawn
            context.close()
        browser.close()
    return {
        "runs_table_first_rows_s": statistics.median(table),
        "runs_table_first_paint_s": statistics.median(paint),
        "runs_table_page_bytes": statistics.median(weights),
        "chart_drawn_s": statistics.median(chart),
        "chart_points_drawn": drawn,
        "raw": {"table": table, "paint": paint, "chart": chart, "bytes": weights},
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--params", type=int, default=50)
    ap.add_argument("--metrics", type=int, default=20)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mlflow", action="store_true", help="also populate and time `mlflow server`'s UI")
    ap.add_argument("--workdir", type=Path, help="keep the database here; a second run reuses it (no populating)")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ui-"))
    ids_file = workdir / "ids.json"
    server = ServerProcess(TRACKGATE, workdir / "trackgate")
    await server.start()
    try:
        if ids_file.exists():
            experiment_id, long_id = json.loads(ids_file.read_text())
        else:
            experiment_id, long_id = await populate(
                server.base_url, args.runs, args.params, args.metrics, args.points)
            ids_file.write_text(json.dumps([experiment_id, long_id]))
        figures = await asyncio.to_thread(measure, server.base_url, experiment_id, long_id, args.rounds, args.runs + 1)
    finally:
        server.stop()
    sizes = {"runs": args.runs, "params": args.params, "metrics": args.metrics, "points": args.points}
    print(json.dumps({"sizes": sizes, **figures}, indent=2))
    if args.mlflow:
        reference = ServerProcess(MLFLOW, workdir / "mlflow")
        await reference.start()
        try:
            ml_ids = await populate(reference.base_url, args.runs, args.params, args.metrics, args.points)
            last_run = f"r{args.runs - 1:05d}"
            ml = await asyncio.to_thread(measure_mlflow, reference.base_url, *ml_ids, last_run, args.rounds)
        finally:
            reference.stop()
        print(json.dumps({"mlflow": ml}, indent=2))
    print(f"\n| figure | trackgate |\n| --- | --- |\n"
          f"| runs table, first rows ({args.runs:,} runs) | {figures['runs_table_first_rows_s'] * 1000:.0f} ms |\n"
          f"| runs table, first contentful paint | {figures['runs_table_first_paint_s'] * 1000:.0f} ms |\n"
          f"| runs table page weight | {figures['runs_table_page_bytes'] / 1024:.0f} KiB |\n"
          f"| chart drawn ({args.points:,} points) | {figures['chart_drawn_s'] * 1000:.0f} ms |")


if __name__ == "__main__":
    asyncio.run(main())
