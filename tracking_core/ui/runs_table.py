"""The runs table of an experiment: columns, MLflow filter, sort and page tokens, all in the URL.

`/experiments/{id}?filter=...&order_by=...&col=params.lr&col=metrics.loss&page_token=...`
Every state of the table is a shareable link; a bad filter shows MLflow's own error text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from tracking_core.api import experiments, runs
from tracking_core.errors import MlflowError
from tracking_core.ui.calls import VIEWS, call, literal
from tracking_core.ui.keys import experiment_keys
from tracking_core.ui.render import page, render

PAGE_SIZES = (25, 100, 500)
DEFAULT_PAGE_SIZE = 100
DEFAULT_COLUMNS = 6  # of each kind, when the URL names none
PARENT_TAG = "mlflow.parentRunId"
MAX_DEPTH = 20  # levels of missing parents fetched for one page
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


def parent_of(run: dict[str, Any]) -> str | None:
    parent = _kinds(run)["tags"].get(PARENT_TAG)
    return parent if parent and parent != run["info"]["run_id"] else None


def nest(
    found: list[dict[str, Any]], parents: Iterable[dict[str, Any]] = ()
) -> list[tuple[dict[str, Any], int, bool]]:
    """Rows as (run, depth, context), every child directly under its parent.

    `found` is the page in its sort order; `parents` are runs fetched only because a run of the
    page is their descendant (`context` rows). A group takes the place of its first run on the
    page, and children keep the page's order. A run whose parents form a loop is shown at the top.
    """
    order = {r["info"]["run_id"]: i for i, r in enumerate(found)}
    by_id = {r["info"]["run_id"]: r for r in parents} | {r["info"]["run_id"]: r for r in found}

    def ancestors(run_id: str) -> list[str]:
        chain: list[str] = []
        parent = parent_of(by_id[run_id])
        while parent in by_id and parent not in chain and parent != run_id:
            chain.append(parent)
            parent = parent_of(by_id[parent])
        if parent == run_id or parent in chain:  # a loop: this run heads its group
            return []
        return chain

    up = {run_id: ancestors(run_id) for run_id in by_id}
    for run_id, i in list(order.items()):  # a context row sorts where its first descendant on the page does
        for ancestor in up[run_id]:
            order[ancestor] = min(order.get(ancestor, i), i)
    children: dict[str, list[str]] = {}
    top: list[str] = []
    for run_id in sorted((r for r in by_id if r in order), key=order.__getitem__):
        (children.setdefault(up[run_id][0], []) if up[run_id] else top).append(run_id)
    rows: list[tuple[dict[str, Any], int, bool]] = []

    def walk(run_id: str, depth: int) -> None:
        rows.append((by_id[run_id], depth, run_id not in found_ids))
        for child in children.get(run_id, []):
            walk(child, depth + 1)

    found_ids = {r["info"]["run_id"] for r in found}
    for run_id in top:
        walk(run_id, 0)
    return rows


async def missing_parents(
    request: web.Request, experiment_id: str, found: list[dict[str, Any]], view_type: str
) -> list[dict[str, Any]]:
    """The parents (and their parents) of this page's child runs that are not on the page, fetched
    by id as MLflow's UI fetches missing parents, so that a child is always shown under its parent,
    whichever page or filter left the parent out. Same experiment and view as the page."""
    have = {r["info"]["run_id"] for r in found}
    fetched: list[dict[str, Any]] = []
    wanted = {p for r in found if (p := parent_of(r)) and p not in have}
    for _ in range(MAX_DEPTH):
        if not wanted:
            break
        got = (await call(
            request, runs.ENDPOINTS, "runs/search", experiment_ids=[experiment_id], run_view_type=view_type,
            filter=f"attributes.run_id IN ({', '.join(literal(i) for i in sorted(wanted))})",
            max_results=len(wanted),
        )).get("runs", [])
        fetched += got
        have |= {r["info"]["run_id"] for r in got}
        wanted = {p for r in got if (p := parent_of(r)) and p not in have}
    return fetched


def _columns(
    requested: list[str], found: list[dict[str, Any]], everywhere: dict[str, list[str]] | None = None
) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """The chosen (kind, key) columns, and the picker's keys: those of the whole experiment when
    `everywhere` has them, else every key of each kind seen on this page."""
    seen: dict[str, dict[str, None]] = {"params": {}, "metrics": {}, "tags": {}}
    for run in found:
        for kind, values in _kinds(run).items():
            seen[kind].update(dict.fromkeys(values))
    available = everywhere or {kind: sorted(keys) for kind, keys in seen.items()}
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
    all_keys = q.get("keys") == "all"
    everywhere = await experiment_keys(request, experiment_id, state["view"]) if all_keys else None
    columns, available = _columns(state["col"], run_list, everywhere)
    parents = await missing_parents(request, experiment_id, run_list, VIEWS[state["view"]]) if run_list else []
    rows = [(run, depth, context, _kinds(run)) for run, depth, context in nest(run_list, parents)]
    return render(
        request, "runs.html", experiment=experiment, state=state, rows=rows, columns=columns,
        available=available, all_keys=all_keys, attributes=ATTRIBUTES, quoted=quoted, page_token=token,
        next_page_token=found.get("next_page_token"), filter_error=filter_error, page_sizes=PAGE_SIZES,
        status=400 if filter_error else 200,
    )


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(prefix + "/experiments/{experiment_id}", runs_page)
