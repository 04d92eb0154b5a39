"""The runs table and run page over HTTP against `trackgate server`, with runs the official mlflow
client logged: nested runs across pages (a child is always shown directly under its parent,
whichever page or filter the parent itself falls on), and a run whose artifacts cannot be read."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from mlflow.tracking import MlflowClient

from tests.server_process import RunningServer, trackgate_server

pytestmark = pytest.mark.slow
CHILDREN = 30
ROW = re.compile(r'<tr data-run-id="([0-9a-f]+)"(?: class="([^"]*)")?>')


def rows(server: RunningServer, experiment_id: str, **query: str) -> list[tuple[str, str]]:
    """(run id, row classes) of the runs table, top to bottom."""
    response = requests.get(f"{server.url}/experiments/{experiment_id}", params=query, timeout=30)
    assert response.status_code == 200, response.text
    return ROW.findall(response.text)


def test_children_stay_under_their_parent_on_every_page(server: RunningServer, tracking: str) -> None:
    client = MlflowClient(tracking)
    experiment_id = client.create_experiment("nesting-across-pages")
    now = int(time.time() * 1000)
    parent = client.create_run(experiment_id, run_name="parent", start_time=now).info.run_id
    children = [
        client.create_run(experiment_id, run_name=f"child-{i:02d}", start_time=now + 10 + i,
                          tags={"mlflow.parentRunId": parent}).info.run_id
        for i in range(CHILDREN)
    ]  # fmt: skip
    grandchild = client.create_run(experiment_id, run_name="grandchild", start_time=now + 5,
                                   tags={"mlflow.parentRunId": children[0]}).info.run_id  # fmt: skip
    loner = client.create_run(experiment_id, run_name="loner", start_time=now + 1).info.run_id

    # Newest first: page 1 holds children 29..5 but not their parent, which is on page 2.
    first = rows(server, experiment_id, max_results="25")
    assert first[0] == (parent, "context")  # the parent heads the page, marked as shown for its children
    assert first[1:] == [(c, "child") for c in reversed(children[5:])]
    token = re.search(r'page_token=([^"&]+)', requests.get(
        f"{server.url}/experiments/{experiment_id}", params={"max_results": "25"}, timeout=30).text)
    assert token is not None
    second = rows(server, experiment_id, max_results="25", page_token=requests.utils.unquote(token.group(1)))
    # Page 2: children 4..0, the grandchild (under child 0), the parent itself (a result here), the loner.
    assert second == [
        (parent, ""),
        *[(c, "child") for c in reversed(children[1:5])],
        (children[0], "child"), (grandchild, "child"),
        (loner, ""),
    ]

    # A filter that matches only the grandchild: its parent and grandparent are shown above it.
    only = rows(server, experiment_id, filter="attributes.run_name = 'grandchild'")
    assert only == [(parent, "context"), (children[0], "child context"), (grandchild, "child")]


def test_run_page_stays_readable_when_its_artifacts_are_not(tmp_path: Path) -> None:
    """A run whose artifact location the server may no longer read (here: an allowed location
    dropped from the settings, as after an import from MLflow): params and charts still show, the
    artifact browser says why it is empty."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with trackgate_server(tmp_path / "srv", "--artifact-allowed-locations", str(elsewhere)) as first:
        client = MlflowClient(first.url)
        experiment_id = client.create_experiment("outside", artifact_location=elsewhere.as_uri())
        run_id = client.create_run(experiment_id, run_name="outside-run").info.run_id
        client.log_param(run_id, "lr", "0.5")
        client.log_metric(run_id, "loss", 0.25)
    with trackgate_server(tmp_path / "srv") as second:
        response = requests.get(f"{second.url}/runs/{run_id}", timeout=30)
        assert response.status_code == 200
        assert 'id="artifacts-error"' in response.text and "is outside them" in response.text
        assert "0.5" in response.text and 'id="run-chart"' in response.text
        refused = requests.get(f"{second.url}/runs/{run_id}?file=x.txt", timeout=30)
        assert refused.status_code == 200 and 'id="artifact-preview"' not in refused.text
