"""Outages and shutdown: the database unreachable for 10 s, and SIGTERM under load.

The database sits behind a TCP relay in the test process, so the test can make it unreachable
(every connection cut, new ones refused) without touching the shared PostgreSQL server. While it
is away the API answers 503 TEMPORARILY_UNAVAILABLE with Retry-After (the mlflow client retries
those), never a 500; when it is back, service resumes by itself, and a client call started during
the outage completes. SIGTERM under load lets in-flight requests finish and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from tests.server_process import trackgate_server
from tests.services import free_port, throwaway_postgres
from tracking_core.settings import CoreSettings
from tracking_core.store import schema

API = "/api/2.0/mlflow"


class Relay:
    """A loopback TCP relay to the database that can be cut and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@pytest.fixture
def relayed_postgres() -> Iterator[tuple[str, Relay]]:
    with throwaway_postgres() as uri:
        asyncio.run(schema.prepare(CoreSettings(backend_store_uri=uri)))
        parsed = urlparse(uri)
        relay = Relay((parsed.hostname or "127.0.0.1", parsed.port or 5432))
        try:
            yield uri.replace(f"{parsed.hostname}:{parsed.port or 5432}", f"127.0.0.1:{relay.port}"), relay
        finally:
            relay.cut()


def test_database_outage_is_503_and_service_resumes(
    relayed_postgres: tuple[str, Relay], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    uri, relay = relayed_postgres
    with trackgate_server(tmp_path, "--backend-store-uri", uri) as server:
        experiment = requests.post(server.url + API + "/experiments/create", json={"name": "outage"}, timeout=10)
        experiment_id = experiment.json()["experiment_id"]
        relay.cut()
        outage_started = time.monotonic()
        statuses: set[int] = set()
        while time.monotonic() - outage_started < 3:
            r = requests.get(server.url + API + "/experiments/get", params={"experiment_id": experiment_id},
                             timeout=30)
            statuses.add(r.status_code)
            assert r.status_code == 503, r.text
            assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE" and "Retry-After" in r.headers
            time.sleep(0.2)
        # A client call made during the outage is retried by the mlflow client until the database is back
        # (with its default 7 retries, which honour Retry-After: 1; the suite's conftest turns them off).
        time.sleep(max(0.0, 6 - (time.monotonic() - outage_started)))
        result: dict[str, object] = {}

        def client_call() -> None:
            mlflow.set_tracking_uri(server.url)
            try:
                result["run"] = MlflowClient().create_run(experiment_id).info.run_id
            except Exception as exc:
                result["error"] = exc

        caller = threading.Thread(target=client_call)
        caller.start()
        time.sleep(max(0.0, 10 - (time.monotonic() - outage_started)))
        relay.restore()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = requests.get(server.url + API + "/experiments/get", params={"experiment_id": experiment_id},
                             timeout=30)
            if r.status_code == 200:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        caller.join(120)
        mlflow.set_tracking_uri("")
        assert "run" in result, result
        assert "unhandled error" not in server.log()


def test_sigterm_under_load_finishes_in_flight_and_exits_0(tmp_path: Path) -> None:
    with trackgate_server(tmp_path) as server:
        experiment_id = requests.post(server.url + API + "/experiments/create", json={"name": "term"},
                                      timeout=10).json()["experiment_id"]
        run_id = requests.post(server.url + API + "/runs/create", json={"experiment_id": experiment_id},
                               timeout=10).json()["run"]["info"]["run_id"]
        acked: list[int] = []
        failures: list[str] = []
        stop = threading.Event()

        def writer(n: int) -> None:
            session = requests.Session()
            i = 0
            while not stop.is_set():
                body = {"run_id": run_id, "key": f"m{n}", "value": 1.0, "timestamp": 1, "step": i}
                try:
                    r = session.post(server.url + API + "/runs/log-metric", json=body, timeout=30)
                except requests.ConnectionError:
                    return  # the listener closed: expected once the drain begins
                if r.status_code == 200:
                    acked.append(n * 1_000_000 + i)
                elif r.status_code != 503:
                    failures.append(f"{r.status_code} {r.text[:200]}")
                i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(60)
        stop.set()
        for t in threads:
            t.join(30)
        assert code == 0, server.log()[-3000:]
        assert failures == [] and len(acked) > 10
        assert "Traceback" not in server.log()
    # Every acknowledged point survived the shutdown.
    with trackgate_server(tmp_path, port=int(server.url.rsplit(":", 1)[1])) as again:
        stored = 0
        for n in range(4):
            history = requests.get(again.url + API + "/metrics/get-history",
                                   params={"run_id": run_id, "metric_key": f"m{n}"}, timeout=10).json()
            stored += len(history.get("metrics", []))
        assert stored >= len(acked)
