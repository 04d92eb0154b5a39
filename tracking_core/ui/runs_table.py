"""The runs table of an experiment: columns, MLflow filter, sort and page tokens, all in the URL.

`/experiments/{id}?filter=...&order_by=...&col=params.lr&col=metrics.loss&page_token=...`
Every state of the table is a shareable link; a bad filter shows MLflow's own error text.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracking_core.api import experiments, runs
from tracking_core.errors import MlflowError
from tracking_core.ui.calls import VIEWS, call
from tracking_core.ui.render import page, render

PAGE_SIZES = (25, 100, 500)
DEFAULT_PAGE_SIZE = 100
DEFAULT_COLUMNS = 6  # of each kind, when the URL names none
PARENT_TAG = "mlflow.parentRunId"
# Sortable attribute columns: (label, order_by key).
ATTRIBUTES = (("Run", "attributes.run_name"), ("Status", "attributes.status"),
              ("User", "attributes.user_id"), ("Started", "attributes.start_time"))


def quoted(kind: str, key: str) -> str:
    """`kind.key` in the search grammar, backticked so any key (spaces, dots) parses."""
    return f"{kind}.`{key.replace('`', '``')}`"


def _kinds(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    data = run.get("data", {})
    return {
        "params": {p["key"]: p["value"] for p in data.get("params", [])},
        "metrics": {m["key"]: m["value"] for m in data.get("metrics", [])},
        "tags": {t["key"]: t["value"] for t in data.get("tags", [])},
    }


def nest(found: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Rows with their depth: a child follows its parent when both are on this page."""
    on_page = {r["info"]["run_id"] for r in found}
    children: dict[str, list[dict[str, Any]]] = {}
    top = []
    for run in found:
        parent = _kinds(run)["tags"].get(PARENT_TAG)
        if parent in on_page and parent != run["info"]["run_id"]:
            children.setdefault(parent, []).append(run)
        else:
            top.append(run)
    rows: list[tuple[dict[str, Any], int]] = []

    def walk(run: dict[str, Any], depth: int) -> None:
        rows.append((run, depth))
        for child in children.get(run["info"]["run_id"], []):
            if depth < 20:
                walk(child, depth + 1)

    for run in top:
        walk(run, 0)
    return rows


def _columns(requested: list[str], found: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """The chosen (kind, key) columns, and every key of each kind seen on this page (the picker)."""
    seen: dict[str, dict[str, None]] = {"params": {}, "metrics": {}, "tags": {}}
    for run in found:
        for kind, values in _kinds(run).items():
            seen[kind].update(dict.fromkeys(values))
    available = {kind: sorted(keys) for kind, keys in seen.items()}
    available["tags"] = [k for k in available["tags"] if not k.startswith("mlflow.")]
    chosen = []
    for col in requested:
        kind, _, key = col.partition(".")
        if kind in seen and key:
            chosen.append((kind, key))
    if not requested:
        chosen = [("metrics", k) for k in available["metrics"][:DEFAULT_COLUMNS]]
        chosen += [("params", k) for k in available["params"][:DEFAULT_COLUMNS]]
    return chosen, available


def _page_size(text: str | None) -> int:
    try:
        size = int(text or DEFAULT_PAGE_SIZE)
    except ValueError:
        return DEFAULT_PAGE_SIZE
    return size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE


@page
async def runs_page(request: web.Request) -> web.StreamResponse:
    experiment_id = request.match_info["experiment_id"]
    experiment = (await call(request, experiments.ENDPOINTS, "experiments/get", experiment_id=experiment_id))[
        "experiment"
    ]
    q = request.query
    state: dict[str, Any] = {
        "filter": q.get("filter", ""),
        "order_by": q.get("order_by", ""),
        "col": q.getall("col", []),
        "view": q.get("view") if q.get("view") in VIEWS else "active",
        "max_results": _page_size(q.get("max_results")),
    }
    token = q.get("page_token") or None
    found: dict[str, Any] = {}
    filter_error = None
    try:
        found = await call(
            request, runs.ENDPOINTS, "runs/search", experiment_ids=[experiment_id],
            filter=state["filter"] or None, run_view_type=VIEWS[state["view"]],
            order_by=[state["order_by"]] if state["order_by"] else [], max_results=state["max_results"],
            page_token=token,
        )
    except MlflowError as exc:
        filter_error = exc.message
    run_list = found.get("runs", [])
    columns, available = _columns(state["col"], run_list)
    rows = [(run, depth, _kinds(run)) for run, depth in nest(run_list)]
    return render(
        request, "runs.html", experiment=experiment, state=state, rows=rows, columns=columns,
        available=available, attributes=ATTRIBUTES, quoted=quoted, page_token=token,
        next_page_token=found.get("next_page_token"), filter_error=filter_error, page_sizes=PAGE_SIZES,
        status=400 if filter_error else 200,
    )


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(prefix + "/experiments/{experiment_id}", runs_page)
