"""Nested runs across pages of the runs table, over HTTP against `trackgate server`, with runs the
official mlflow client logged: a child is always shown directly under its parent, whichever page
(or filter) the parent itself falls on."""

from __future__ import annotations

import re
import time

import pytest
import requests
from mlflow.tracking import MlflowClient

from tests.server_process import RunningServer

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
