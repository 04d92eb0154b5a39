"""The web UI in a real browser: Chromium (Playwright) against `trackgate server`, with data the
official mlflow client logged. Every page: no console errors, no request to another host, no
serious or critical axe-core violation, a screenshot under the test's temp folder."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import mlflow
import pytest
from mlflow import MlflowClient

from tests.server_process import RunningServer, trackgate_server
from tests.ui.browser import Watched, axe_violations, chromium, describe, watched

__all__ = ["chromium", "watched"]

pytestmark = pytest.mark.slow
RUNS = 30  # more than one page of 25
STEPS = 50


def png(width: int = 8, height: int = 6) -> bytes:
    """A small red PNG, built by hand (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


class Logged:
    experiment_id: str
    parent: str
    child: str
    runs: list[str]


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with trackgate_server(Path(tmp_path_factory.mktemp("ui"))) as running:
        yield running


@pytest.fixture(scope="module")
def logged(ui_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    mlflow.set_tracking_uri(ui_server.url)
    out = Logged()
    out.experiment_id = mlflow.set_experiment("ui-demo").experiment_id
    files = tmp_path_factory.mktemp("files")
    (files / "chart.png").write_bytes(png())
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_params({"lr": "0.1", "layers": "3"})
        for step in range(STEPS):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_text("hello from the run\n", "notes/readme.txt")
        mlflow.log_dict({"batch": 32}, "config.json")
        mlflow.log_text("a,b\n1,2\n3,4\n", "table.csv")
        mlflow.log_artifact(str(files / "chart.png"), "images")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_params({"lr": "0.2", "layers": "3"})
            mlflow.log_metric("loss", 0.7)
    out.parent, out.child = parent.info.run_id, child.info.run_id
    out.runs = []
    for i in range(RUNS):
        with mlflow.start_run(run_name=f"sweep-{i:02d}") as run:
            mlflow.log_params({"lr": f"{0.001 * (i + 1):.3f}", "layers": "3"})
            mlflow.log_metric("acc", i / RUNS)
        out.runs.append(run.info.run_id)
    yield out
    mlflow.set_tracking_uri("")


def visit(w: Watched, path: str, shots: Path, name: str) -> Any:
    response = w.page.goto(w.base + path)
    assert response is not None and response.status == 200, (path, response and response.status)
    w.page.wait_for_load_state("networkidle")
    w.page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    bad = axe_violations(w.page)
    assert not bad, describe(bad)
    w.check_clean()
    return w.page


def test_experiments_page(watched: Watched, logged: Logged, tmp_path: Path) -> None:
    page = visit(watched, "/", tmp_path, "experiments")
    assert "ui-demo" in page.inner_text("#experiments")
    page.fill("#q", "no-such-name")
    page.click("form[role=search] button")
    assert "No experiments" in page.inner_text("#experiments")
    assert "q=no-such-name" in page.url  # the search is in the URL


def test_runs_table_filter_sort_and_pages(watched: Watched, logged: Logged, tmp_path: Path) -> None:
    base = f"/experiments/{logged.experiment_id}"
    page = visit(watched, base + "?max_results=25", tmp_path, "runs")
    rows = page.locator("#runs tbody tr")
    assert rows.count() == 25
    page.click("a[rel=next]")
    assert page.locator("#runs tbody tr").count() == RUNS + 2 - 25
    watched.check_clean()

    visit(watched, base + "?filter=" + quote("params.lr = '0.010'"), tmp_path, "runs-filtered")
    assert [t.strip() for t in page.locator("#runs tbody tr td:nth-child(2)").all_inner_texts()] == ["sweep-09"]

    page.goto(watched.base + base + "?filter=" + quote("params.lr >"))
    assert page.locator("#filter-error").is_visible()
    assert "Invalid" in page.inner_text("#filter-error") or "invalid" in page.inner_text("#filter-error")

    page.goto(watched.base + base + "?max_results=100&col=metrics.acc&order_by=" + quote("metrics.`acc` DESC"))
    names = [t.strip() for t in page.locator("#runs tbody tr td:nth-child(2)").all_inner_texts()]
    assert names[0] == f"sweep-{RUNS - 1:02d}"
    page.click("#runs thead a:has-text('acc')")  # the header toggles to ascending
    assert "ASC" in page.url
    names = [t.strip() for t in page.locator("#runs tbody tr td:nth-child(2)").all_inner_texts()]
    assert names[0] == "sweep-00"


def test_column_picker_offers_keys_of_every_run(watched: Watched, logged: Logged, tmp_path: Path) -> None:
    """Page 1 (25 sweep runs) has no `loss` metric; the parent and child on page 2 do. The picker
    offers it anyway (fetched when opened), and the chosen column stays in the URL on the next page."""
    base = f"/experiments/{logged.experiment_id}?max_results=25"
    page = visit(watched, base, tmp_path, "picker-closed")
    assert page.locator("#column-picker input[value='metrics.loss']").count() == 0
    page.click("#column-picker summary")
    page.wait_for_selector("#column-picker[data-complete]")
    page.screenshot(path=str(tmp_path / "picker-open.png"), full_page=True)
    page.check("#column-picker input[value='metrics.loss']")
    page.click("#column-picker button[type=submit]")
    page.wait_for_url("**col=metrics.loss**")
    page.click("a[rel=next]")
    assert "col=metrics.loss" in page.url
    assert page.locator("#runs thead th[title='metrics.loss']").count() == 1
    cells = page.locator(f"tr[data-run-id='{logged.parent}'] td.metrics").all_inner_texts()
    assert f"{1.0 / STEPS:.6g}" in cells  # the parent's last loss
    watched.check_clean()
    # Without a script: `keys=all` renders the same keys on the page.
    page = visit(watched, base + "&keys=all", tmp_path, "picker-all-keys")
    assert page.locator("#column-picker input[value='metrics.loss']").count() == 1
    assert page.locator("#column-picker input[value='params.lr']").count() == 1


def test_nested_run_follows_its_parent(watched: Watched, logged: Logged, tmp_path: Path) -> None:
    page = visit(watched, f"/experiments/{logged.experiment_id}?filter=" + quote("params.layers = '3'")
                 + "&order_by=" + quote("attributes.run_name ASC"), tmp_path, "nested")
    ids = page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.runId)")
    assert ids.index(logged.child) == ids.index(logged.parent) + 1
    assert "child" in (page.locator(f"tr[data-run-id='{logged.child}']").get_attribute("class") or "")


def test_duration_sorts_the_page_keeping_groups(watched: Watched, logged: Logged, tmp_path: Path) -> None:
    page = visit(watched, f"/experiments/{logged.experiment_id}", tmp_path, "runs-by-duration")
    durations = """rows => rows.filter(r => !r.classList.contains('child'))
                             .map(r => Number(r.querySelector('td[data-ms]').dataset.ms || -1))"""
    page.click("#runs th[data-duration] button")
    assert page.get_attribute("#runs th[data-duration]", "aria-sort") == "descending"
    top = page.locator("#runs tbody tr").evaluate_all(durations)
    assert top == sorted(top, reverse=True) and len(top) == RUNS + 1
    ids = page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.runId)")
    assert ids.index(logged.child) == ids.index(logged.parent) + 1  # the group moved as one
    page.click("#runs th[data-duration] button")
    top = page.locator("#runs tbody tr").evaluate_all(durations)
    assert top == sorted(top)
    page.focus("#runs tbody tr:first-child")
    page.keyboard.press("ArrowDown")  # keyboard order follows the new order
    assert page.evaluate("document.activeElement === document.querySelector('#runs tbody tr:nth-child(2)')")
    watched.check_clean()


def test_run_page_chart_and_previews(watched: Watched, logged: Logged, tmp_path: Path) -> None:
    page = visit(watched, f"/runs/{logged.parent}", tmp_path, "run")
    page.wait_for_selector("#run-chart[data-drawn]")
    assert page.locator("#run-chart path.series").get_attribute("data-points") == str(STEPS)
    assert page.get_attribute("#run-chart", "data-drawn") == str(STEPS)
    page.check("input[data-role=log]")
    page.wait_for_function("document.location.search.includes('log=1')")
    page.screenshot(path=str(tmp_path / "run-log-scale.png"), full_page=True)

    page = visit(watched, f"/runs/{logged.parent}?dir=notes&file=notes/readme.txt", tmp_path, "preview-text")
    assert "hello from the run" in page.inner_text("#artifact-preview pre")
    page = visit(watched, f"/runs/{logged.parent}?dir=images&file=images/chart.png", tmp_path, "preview-image")
    assert page.locator("#artifact-preview img").evaluate("img => img.complete && img.naturalWidth") == 8
    page = visit(watched, f"/runs/{logged.parent}?file=table.csv", tmp_path, "preview-csv")
    assert page.locator("#artifact-preview tbody tr").count() == 2
    page = visit(watched, f"/runs/{logged.parent}?file=config.json", tmp_path, "preview-json")
    assert '"batch": 32' in page.inner_text("#artifact-preview pre")
    with page.expect_download() as download:
        page.click("#artifact-preview a[download]")
    assert Path(download.value.path()).read_text() == '{\n  "batch": 32\n}'
    assert page.locator(f"#children a[href$='{logged.child}']").count() == 1


def test_compare_highlights_the_differing_param(watched: Watched, logged: Logged, tmp_path: Path) -> None:
    page = visit(watched, f"/experiments/{logged.experiment_id}?filter=" + quote("params.layers = '3'"),
                 tmp_path, "before-compare")
    page.check(f"input[value='{logged.parent}']")
    page.check(f"input[value='{logged.child}']")
    page.click("#compare-form button[type=submit]")
    page.wait_for_selector("#compare-params")
    watched.check_clean()
    assert "diff" in (page.get_attribute("#compare-params tr[data-key='lr']", "class") or "")
    assert "diff" not in (page.get_attribute("#compare-params tr[data-key='layers']", "class") or "")
    page.wait_for_selector("#compare-chart[data-drawn]")
    assert page.locator("#compare-chart path.series").count() == 2
    visit(watched, page.url.removeprefix(watched.base) + "&x=params.lr&y=metrics.loss", tmp_path, "compare")
    assert page.locator("svg.scatter circle").count() == 2
    # Parallel coordinates: by default the differing param (lr) and the metric, one line per run.
    assert page.locator("#parallel input[name=pc]:checked").evaluate_all("xs => xs.map(x => x.value)") == [
        "params.lr", "metrics.loss"]
    assert page.locator("svg.parallel g.run").count() == 2
    page.check("#parallel input[value='params.layers']")
    page.click("#parallel button[type=submit]")
    page.wait_for_url("**pc=params.layers**")
    assert page.locator("svg.parallel line.axis").count() == 3
    page.screenshot(path=str(tmp_path / "compare-parallel.png"), full_page=True)
    watched.check_clean()


def test_experiment_create_rename_delete_from_the_page(
    watched: Watched, logged: Logged, ui_server: RunningServer, tmp_path: Path
) -> None:
    client = MlflowClient(ui_server.url)
    page = visit(watched, "/", tmp_path, "before-create")
    page.fill("#new-experiment", "made-in-browser")
    page.click("form.create button")
    page.wait_for_selector("h1:has-text('made-in-browser')")
    made = client.get_experiment_by_name("made-in-browser")
    assert made is not None
    page.goto(watched.base + "/")
    row = page.locator(f"tr[data-experiment-id='{made.experiment_id}']")
    row.locator("summary").click()
    row.locator("input[name=new_name]").fill("renamed-in-browser")
    row.locator("button:has-text('Rename')").click()
    page.wait_for_selector("#experiments:has-text('renamed-in-browser')")
    assert client.get_experiment(made.experiment_id).name == "renamed-in-browser"
    row = page.locator(f"tr[data-experiment-id='{made.experiment_id}']")
    row.locator("summary").click()
    row.locator("button:has-text('Delete')").click()
    page.wait_for_load_state()
    assert client.get_experiment(made.experiment_id).lifecycle_stage == "deleted"
    page.goto(watched.base + "/?view=deleted")
    page.locator(f"tr[data-experiment-id='{made.experiment_id}'] button:has-text('Restore')").click()
    page.wait_for_load_state()
    assert client.get_experiment(made.experiment_id).lifecycle_stage == "active"
    watched.check_clean()


def test_cross_site_post_is_refused(watched: Watched, logged: Logged, ui_server: RunningServer) -> None:
    response = watched.page.request.post(
        ui_server.url + "/experiments/create", form={"name": "csrf"}, headers={"Origin": "http://evil.example"}
    )
    assert response.status == 403
    assert MlflowClient(ui_server.url).get_experiment_by_name("csrf") is None


def test_models_pages(watched: Watched, logged: Logged, ui_server: RunningServer, tmp_path: Path) -> None:
    client = MlflowClient(ui_server.url)
    client.create_registered_model("ui-model", description="a model for the UI")
    version = client.create_model_version("ui-model", f"runs:/{logged.parent}/model", run_id=logged.parent)
    client.set_registered_model_alias("ui-model", "champion", version.version)
    page = visit(watched, "/models?q=ui-", tmp_path, "models")
    page.click("text=ui-model")
    page.wait_for_selector("#versions")
    watched.check_clean()
    row = page.locator("#versions tr[data-version='1']")
    assert "@champion" in row.inner_text()
    assert row.locator(f"a[href$='/runs/{logged.parent}']").count() == 1
    model = client.create_logged_model(logged.experiment_id, name="ui-logged", source_run_id=logged.parent)
    client.log_metric(logged.parent, "val_acc", 0.9, model_id=model.model_id)
    page = visit(watched, f"/runs/{logged.parent}", tmp_path, "run-models")
    link = page.locator("#run-models a:has-text('ui-logged')")
    target = f"/experiments/{logged.experiment_id}/models#model-{model.model_id}"
    assert (link.get_attribute("href") or "").endswith(target)
    link.click()
    page.wait_for_load_state()
    watched.check_clean()
    assert "val_acc=0.9" in page.inner_text(f"tr[id='model-{model.model_id}']")
    visit(watched, f"/experiments/{logged.experiment_id}/models", tmp_path, "logged-models")
