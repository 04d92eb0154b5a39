"""The UI's pure parts: the cross-site check, run nesting, column choice, preview kinds, scatter,
and the seek targets of long metric histories."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from tracking_core.store.metric_history import _seek_targets, sample_steps
from tracking_core.ui.artifacts import kind_of
from tracking_core.ui.guard import same_origin
from tracking_core.ui.parallel import parallel_svg
from tracking_core.ui.render import query
from tracking_core.ui.runs_table import _columns, nest, quoted
from tracking_core.ui.scatter import scatter_svg


def _request(headers: dict[str, str]) -> object:
    return make_mocked_request("POST", "/experiments/create", headers={"Host": "ui.test", **headers})


@pytest.mark.parametrize(("headers", "allowed"), [
    ({"Origin": "http://ui.test"}, True),
    ({"Origin": "http://ui.test", "Sec-Fetch-Site": "same-origin"}, True),
    ({"Origin": "http://ui.test", "Sec-Fetch-Site": "cross-site"}, False),
    ({"Origin": "http://evil.test"}, False),
    ({"Origin": "https://ui.test"}, False),
    ({"Origin": "null"}, False),
    ({}, False),
    ({"Origin": "https://public.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"}, True),
], ids=["same", "same-fetch-site", "cross-fetch-site", "other-host", "other-scheme", "null", "none", "forwarded"])
def test_same_origin(headers: dict[str, str], allowed: bool) -> None:
    assert same_origin(_request(headers)) is allowed  # type: ignore[arg-type]


def _run(run_id: str, parent: str | None = None, **data: list[dict[str, str]]) -> dict[str, object]:
    tags = [{"key": "mlflow.parentRunId", "value": parent}] if parent else []
    return {"info": {"run_id": run_id}, "data": {"tags": tags, **data}}


def _rows(found: list[dict[str, object]], parents: list[dict[str, object]] = []) -> list[tuple[str, int, bool]]:  # noqa: B006
    return [(r["info"]["run_id"], depth, context) for r, depth, context in nest(found, parents)]  # type: ignore[arg-type, index]


def test_children_follow_their_parent_on_the_page() -> None:
    found = [_run("c1", "p"), _run("x"), _run("p"), _run("g", "c1"), _run("orphan", "elsewhere")]
    # The group sits where its first run is on the page (c1), children in page order.
    assert _rows(found) == [("p", 0, False), ("c1", 1, False), ("g", 2, False), ("x", 0, False), ("orphan", 0, False)]


def test_parents_from_other_pages_head_their_children() -> None:
    """Children whose parent (and grandparent) are not on the page: the fetched parents are shown as
    context rows where the first of their descendants would be, each child under its own parent."""
    found = [_run("a"), _run("c2", "p"), _run("b"), _run("g", "c3"), _run("c1", "p")]
    parents = [_run("p", "root"), _run("c3", "p"), _run("root")]
    assert _rows(found, parents) == [
        ("a", 0, False),
        ("root", 0, True), ("p", 1, True), ("c2", 2, False), ("c3", 2, True), ("g", 3, False), ("c1", 2, False),
        ("b", 0, False),
    ]


def test_a_loop_of_parents_loses_no_row() -> None:
    found = [_run("a", "b"), _run("b", "a"), _run("c", "c")]
    assert sorted(_rows(found)) == [("a", 0, False), ("b", 0, False), ("c", 0, False)]


def test_columns_default_and_chosen() -> None:
    found = [_run("a", params=[{"key": "lr", "value": "1"}], metrics=[{"key": "loss", "value": 1}])]
    chosen, available = _columns([], found)  # type: ignore[arg-type]
    assert chosen == [("metrics", "loss"), ("params", "lr")] and available["params"] == ["lr"]
    chosen, _ = _columns(["params.lr", "bogus", "tags.note"], found)  # type: ignore[arg-type]
    assert chosen == [("params", "lr"), ("tags", "note")]
    assert quoted("metrics", "a `b`") == "metrics.`a ``b```"


@pytest.mark.parametrize(("name", "kind"), [
    ("a/MLmodel", "text"), ("x.json", "json"), ("t.CSV", "csv"), ("p.png", "image"), ("c.yaml", "text"),
    ("model.pkl", "binary"), ("noext", "binary"),
])
def test_preview_kinds(name: str, kind: str) -> None:
    assert kind_of(name) == kind


def test_query_strings_keep_lists_and_drop_blanks() -> None:
    assert query({"run": ["a", "b"], "x": "", "y": None, "q": "a b"}) == "?run=a&run=b&q=a+b"
    assert query({}) == ""


def test_scatter_escapes_names() -> None:
    svg = str(scatter_svg([(1.0, 2.0, "<b>run</b>"), (2.0, 3.0, "r2")], "params.lr", "metrics.loss"))
    assert svg.count("<circle") == 2 and "<b>" not in svg


def test_parallel_coordinates_lines_gaps_and_categories() -> None:
    svg = str(parallel_svg(["a", "<b>"], [
        ("params.lr", ["0.1", "0.3"]), ("params.opt", ["adam", None]), ("metrics.loss", [0.5, 0.25]),
    ]))  # fmt: skip
    assert svg.count('<g class="run">') == 2 and "<b>" not in svg and "&lt;b&gt;" in svg
    # Run a: lr lowest (bottom), opt its only category, loss highest (top); run b: a gap at opt.
    assert 'd="M56.0,276.0 L320.0,276.0 L584.0,40.0"' in svg
    assert 'd="M56.0,40.0 M584.0,276.0"' in svg
    assert svg.count("<circle") == 5
    assert "Choose two or more" in str(parallel_svg(["a"], [("params.lr", ["1"])]))


@pytest.mark.parametrize(("count", "gap", "max_results"), [(30_000, 1, 1000), (12_345, 7, 2500), (20_001, 2, 3)])
def test_seek_targets_match_mlflows_sample_for_even_steps(count: int, gap: int, max_results: int) -> None:
    steps = list(range(5, 5 + count * gap, gap))
    assert _seek_targets(steps[0], steps[-1], gap, max_results) == sample_steps(steps, max_results)
