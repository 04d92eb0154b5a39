"""--read-replica-backend-store-uri against a real PostgreSQL streaming standby: searches read the
replica, writes and reads by id the primary. Pausing the standby's WAL replay makes the routing
visible: a run just created is readable at once by id, but not yet found by a search."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.server_process import trackgate_server
from tests.support.pg_replica import primary_and_standby

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

API = "/api/2.0/mlflow"


def _until(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_searches_read_the_replica_and_reads_by_id_the_primary(tmp_path: Path) -> None:
    with primary_and_standby() as pair, trackgate_server(
        tmp_path, "--backend-store-uri", pair.primary, "--read-replica-backend-store-uri", pair.standby
    ) as server:
        url = server.url + API

        def post(path: str, body: dict[str, object]) -> dict[str, object]:
            answer = requests.post(url + path, json=body, timeout=10)
            assert answer.status_code == 200, answer.text
            return answer.json()  # type: ignore[no-any-return]

        def searched_runs(experiment_id: str) -> set[str]:
            answer = post("/runs/search", {"experiment_ids": [experiment_id], "max_results": 100})
            return {run["info"]["run_id"] for run in answer.get("runs", [])}  # type: ignore[attr-defined]

        experiment_id = str(post("/experiments/create", {"name": "replicated"})["experiment_id"])
        first = post("/runs/create", {"experiment_id": experiment_id})["run"]["info"]["run_id"]  # type: ignore[index]
        assert _until(lambda: first in searched_runs(experiment_id)), "the standby never caught up"

        assert pair.standby_sql("SELECT pg_wal_replay_pause()") is not None
        assert _until(lambda: pair.standby_sql("SELECT pg_get_wal_replay_pause_state()") == "paused")
        second = post("/runs/create", {"experiment_id": experiment_id})["run"]["info"]["run_id"]  # type: ignore[index]
        post("/runs/log-metric", {"run_id": second, "key": "loss", "value": 0.5, "timestamp": 1, "step": 3})
        # Read-your-write by id: the primary answers.
        got = requests.get(url + "/runs/get", params={"run_id": second}, timeout=10).json()
        assert got["run"]["data"]["metrics"] == [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 3}]
        history = requests.get(url + "/metrics/get-history", params={"run_id": second, "metric_key": "loss"},
                               timeout=10).json()
        assert [m["step"] for m in history["metrics"]] == [3]
        # The search went to the paused replica: the first run is there, the second not yet.
        assert searched_runs(experiment_id) == {first}

        pair.standby_sql("SELECT pg_wal_replay_resume()")
        assert _until(lambda: searched_runs(experiment_id) == {first, second})
