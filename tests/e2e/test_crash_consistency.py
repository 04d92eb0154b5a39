"""Crash consistency: `kill -9` under mixed writes, then every acknowledged write is there, and no
batch is half there. On SQLite and PostgreSQL.

Writers log batches (10 metric points under a key of their own, plus a param and a tag), single
params and tags, as fast as they can, through the gateway. Mid-stream the core worker is killed
with SIGKILL (the supervisor restarts it; the gateway answers 503 meanwhile), and in a second
test the whole server's process group is (then it is started again on the same database). After
that, every write that got a 200 must be present, and each batch must be all there or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.server_process import RunningServer, trackgate_server, wait_ready
from tests.services import throwaway_postgres
from tracking_core.settings import CoreSettings
from tracking_core.store import schema

API = "/api/2.0/mlflow"
WRITERS = 4
POINTS = 10


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/crash.db"
        return
    with throwaway_postgres() as uri:
        asyncio.run(schema.prepare(CoreSettings(backend_store_uri=uri)))
        yield uri


@dataclass
class Ledger:
    """What the writers sent, and which of it was acknowledged with a 200."""

    batches: list[tuple[str, bool]] = field(default_factory=list)  # (key, acked)
    params: list[tuple[str, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: list[tuple[str, bool]], key: str, acked: bool) -> None:
        with self.lock:
            kind.append((key, acked))


def _writer(url: str, run_id: str, n: int, ledger: Ledger, stop: threading.Event) -> None:
    session = requests.Session()
    i = 0
    while not stop.is_set():
        key = f"w{n}_b{i}"
        body = {"run_id": run_id,
                "metrics": [{"key": key, "value": s * 0.5, "timestamp": 1000 + s, "step": s} for s in range(POINTS)],
                "params": [{"key": f"{key}_p", "value": "v"}], "tags": [{"key": f"{key}_t", "value": "v"}]}
        try:
            r = session.post(url + API + "/runs/log-batch", json=body, timeout=10)
            ledger.record(ledger.batches, key, r.status_code == 200)
        except requests.RequestException:
            ledger.record(ledger.batches, key, False)
        try:
            r = session.post(url + API + "/runs/log-parameter", json={"run_id": run_id, "key": f"{key}_single",
                                                                      "value": "s"}, timeout=10)
            ledger.record(ledger.params, f"{key}_single", r.status_code == 200)
        except requests.RequestException:
            ledger.record(ledger.params, f"{key}_single", False)
        i += 1


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _core_workers(server: RunningServer) -> list[int]:
    return [pid for pid in _children(server.process.pid)
            if "tracking_core.worker" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]


def _setup(url: str) -> list[str]:
    experiment = requests.post(url + API + "/experiments/create", json={"name": "crash"}, timeout=10).json()
    runs = []
    for _ in range(WRITERS):
        r = requests.post(url + API + "/runs/create", json={"experiment_id": experiment["experiment_id"]}, timeout=10)
        runs.append(r.json()["run"]["info"]["run_id"])
    return runs


def _run_writers(url: str, runs: list[str], ledger: Ledger, during: Any) -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=_writer, args=(url, runs[n], n, ledger, stop)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        during()
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)


def _verify(url: str, runs: list[str], ledger: Ledger) -> tuple[int, int]:
    wait_ready(url, _NoProcess())
    data = {}
    for run_id in runs:
        run = requests.get(url + API + "/runs/get", params={"run_id": run_id}, timeout=10).json()["run"]["data"]
        data[run_id] = ({p["key"] for p in run.get("params", [])}, {t["key"] for t in run.get("tags", [])})
    acked = lost = 0
    for key, ok in ledger.batches:
        run_id = runs[int(key[1:].split("_")[0])]
        history = requests.get(url + API + "/metrics/get-history", params={"run_id": run_id, "metric_key": key},
                               timeout=10).json().get("metrics", [])
        params, tags = data[run_id]
        parts = (len(history) == POINTS, f"{key}_p" in params, f"{key}_t" in tags)
        assert len(history) in (0, POINTS), f"partial batch {key}: {len(history)} of {POINTS} points"
        assert len(set(parts)) == 1, f"partial batch {key}: metrics/param/tag present = {parts}"
        if ok:
            acked += 1
            lost += not all(parts)
    for key, ok in ledger.params:
        if ok:
            acked += 1
            lost += key not in data[runs[int(key[1:].split("_")[0])]][0]
    return acked, lost


class _NoProcess:
    """wait_ready wants a process to watch; after a restart the server object may be a new one."""

    def poll(self) -> None:
        return None


def test_kill_core_worker_under_writes(backend: str, tmp_path: Path) -> None:
    with trackgate_server(tmp_path, "--backend-store-uri", backend) as server:
        runs = _setup(server.url)
        ledger = Ledger()
        workers = _core_workers(server)
        assert workers, "no tracking_core.worker child found"

        def kill_core() -> None:
            for pid in workers:
                os.kill(pid, signal.SIGKILL)

        _run_writers(server.url, runs, ledger, kill_core)
        assert set(_core_workers(server)).isdisjoint(workers)  # the supervisor started a new one
        acked, lost = _verify(server.url, runs, ledger)
    assert acked > 20 and lost == 0, (acked, lost)


def test_kill_whole_server_under_writes(backend: str, tmp_path: Path) -> None:
    ledger = Ledger()
    with trackgate_server(tmp_path, "--backend-store-uri", backend) as server:
        runs = _setup(server.url)
        port = int(server.url.rsplit(":", 1)[1])

        def kill_all() -> None:
            for pid in _children(server.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            server.process.kill()

        _run_writers(server.url, runs, ledger, kill_all)
        server.process.wait(10)
    with trackgate_server(tmp_path, "--backend-store-uri", backend, port=port) as again:
        acked, lost = _verify(again.url, runs, ledger)
    assert acked > 10 and lost == 0, (acked, lost)
