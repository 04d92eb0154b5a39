"""Compare runs: params and metrics side by side (differences marked), overlaid charts, scatter,
parallel coordinates.

`/compare?run=<id>&run=<id>&x=params.lr&y=metrics.loss&pc=params.lr&pc=params.depth&pc=metrics.loss`
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracking_core.api import runs
from tracking_core.errors import invalid
from tracking_core.ui.calls import call
from tracking_core.ui.parallel import MAX_AXES, number, parallel_svg
from tracking_core.ui.render import page, render
from tracking_core.ui.scatter import scatter_svg

MAX_RUNS = 20


def _table(found: list[dict[str, Any]], field: str) -> list[tuple[str, list[Any], bool]]:
    """(key, value per run, differs) rows over the union of keys."""
    per_run = [{x["key"]: x["value"] for x in r.get("data", {}).get(field, [])} for r in found]
    keys = sorted(set().union(*per_run)) if per_run else []
    rows = []
    for key in keys:
        values = [values.get(key) for values in per_run]
        rows.append((key, values, len({repr(v) for v in values}) > 1))
    return rows


@page
async def compare_page(request: web.Request) -> web.StreamResponse:
    run_ids = list(dict.fromkeys(request.query.getall("run", [])))
    if not run_ids:
        raise invalid("Choose at least one run to compare.")
    if len(run_ids) > MAX_RUNS:
        raise invalid(f"Compare at most {MAX_RUNS} runs at a time.")
    found = [(await call(request, runs.ENDPOINTS, "runs/get", run_id=r))["run"] for r in run_ids]
    params, metrics = _table(found, "params"), _table(found, "metrics")
    axes = [f"params.{k}" for k, _, _ in params] + [f"metrics.{k}" for k, _, _ in metrics]
    x = request.query.get("x") or next((a for a in axes if a.startswith("params.")), "")
    y = request.query.get("y") or next((a for a in axes if a.startswith("metrics.")), "")
    lookup = {f"params.{k}": v for k, v, _ in params} | {f"metrics.{k}": v for k, v, _ in metrics}
    points = []
    if x in lookup and y in lookup:
        for run, xv, yv in zip(found, lookup[x], lookup[y], strict=True):
            if (fx := number(xv)) is not None and (fy := number(yv)) is not None:
                points.append((fx, fy, run["info"]["run_name"]))
    metric_keys = [k for k, _, _ in metrics]
    chosen = [k for k in request.query.getall("metric", []) if k in metric_keys] or metric_keys[:1]
    # Parallel coordinates: the axes named by `pc=`, else the params that differ, then the metrics.
    differing = [f"params.{k}" for k, _, differs in params if differs] + [f"metrics.{k}" for k in metric_keys]
    pc = [a for a in dict.fromkeys(request.query.getall("pc", [])) if a in lookup][:MAX_AXES] or differing[:MAX_AXES]
    names = [r["info"].get("run_name") or r["info"]["run_id"] for r in found]
    return render(
        request, "compare.html", runs=found, run_ids=run_ids, params=params, metrics=metrics, axes=axes, x=x, y=y,
        scatter=scatter_svg(points, x, y), metric_keys=metric_keys, chosen=chosen, pc=pc,
        parallel=parallel_svg(names, [(a, lookup[a]) for a in pc]),
    )


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(prefix + "/compare", compare_page)
