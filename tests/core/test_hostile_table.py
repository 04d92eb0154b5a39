"""The hostile-input table, against a running `trackgate server` (gateway + core), as a client sends it.

Run with auth off and with basic auth on (rows sent as a signed-in admin). One row per shape:
oversized bodies and headers, deep JSON, invalid UTF-8, huge numbers, NaN in odd places, 10,000 tags,
keys with `/`, `..` and NUL, long and SQL-looking filters, a body that is not what its
Content-Encoding says, smuggling-shaped framing. Each must be a clear 4xx (MLflow's JSON error on API
paths), the server must stay ready after each, and nothing stored may change: the database's row
counts and the run's data are compared before and after each row.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests

from tests.server_process import RunningServer, trackgate_server

API = "/api/2.0/mlflow"
TABLES = ("experiments", "experiment_tags", "runs", "metrics", "latest_metrics", "params", "run_tags", "inputs",
          "registered_models", "model_versions", "users")


PASSWORD = "hostile-pass-1"


@dataclass
class World:
    server: RunningServer
    db: Path
    experiment_id: str
    run_id: str
    auth: tuple[str, str] | None


@pytest.fixture(scope="module", params=["auth-off", "auth-on"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A server with one experiment and run; with basic auth on, every row is sent as a signed-in admin
    (so it reaches the API rather than stopping at the 401)."""
    d = tmp_path_factory.mktemp(f"hostile-{request.param}")
    args = ["--max-body-mb", "1"]
    auth = None
    if request.param == "auth-on":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKGATE_", "MLFLOW_"))}
        made = subprocess.run([sys.executable, "-m", "gateway.cli", "users", "create", "hostile", "--admin",
                               "--backend-store-uri", f"sqlite:///{d}/trackgate.db"], input=PASSWORD + "\n",
                              capture_output=True, text=True, env=env, timeout=120)
        assert made.returncode == 0, made.stderr
        args += ["--auth", "basic"]
        auth = ("hostile", PASSWORD)
    with trackgate_server(d, *args) as server:
        post = requests.post(server.url + API + "/experiments/create", json={"name": "hostile"}, timeout=10,
                             auth=auth)
        experiment_id = post.json()["experiment_id"]
        run = requests.post(server.url + API + "/runs/create", json={"experiment_id": experiment_id}, timeout=10,
                            auth=auth)
        run_id = run.json()["run"]["info"]["run_id"]
        requests.post(server.url + API + "/runs/log-metric", timeout=10, auth=auth,
                      json={"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1})
        yield World(server, d / "trackgate.db", experiment_id, run_id, auth)


def _snapshot(world: World) -> dict[str, Any]:
    with sqlite3.connect(f"file:{world.db}?mode=ro", uri=True) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    run = requests.get(world.server.url + API + "/runs/get", params={"run_id": world.run_id}, timeout=10,
                       auth=world.auth).json()
    return {"counts": counts, "run": run}


def _raw(world: World, payload: bytes) -> bytes:
    """Send bytes as they are (no client normalisation) and read what comes back."""
    url = urlparse(world.server.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def _json_post(path: str, body: Any) -> dict[str, Any]:
    return {"method": "POST", "path": path, "data": json.dumps(body).encode(),
            "headers": {"Content-Type": "application/json"}}


def _rows(run_id: str, experiment_id: str) -> list[tuple[str, dict[str, Any]]]:
    metric = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1}
    deep = b"[" * 100_000 + b"]" * 100_000
    return [
        ("oversized-body", {"method": "POST", "path": "/runs/log-batch", "headers": {
            "Content-Type": "application/json"}, "data": json.dumps(
                {"run_id": run_id, "params": [{"key": "p", "value": "x" * (3 * 1024 * 1024)}]}).encode()}),
        ("oversized-header", {"method": "GET", "path": "/experiments/get", "params": {
            "experiment_id": experiment_id}, "headers": {"X-Filler": "a" * 70_000}}),
        ("oversized-authorization", {"method": "GET", "path": "/experiments/get", "params": {
            "experiment_id": experiment_id}, "headers": {"Authorization": "Basic " + "A" * 9_000}}),
        ("deep-json", {"method": "POST", "path": "/experiments/create", "data": b'{"name": "d", "x": ' + deep + b"}",
                       "headers": {"Content-Type": "application/json"}}),
        ("invalid-utf8", {"method": "POST", "path": "/experiments/create", "data": b'{"name": "bad \xff\xfe"}',
                          "headers": {"Content-Type": "application/json"}}),
        ("nan-literal", {"method": "POST", "path": "/runs/log-metric",
                         "data": json.dumps(metric).replace("1.0", "NaN").encode(),
                         "headers": {"Content-Type": "application/json"}}),
        ("nan-timestamp", _json_post("/runs/log-metric", {**metric, "timestamp": "NaN"})),
        ("nan-max-results", _json_post("/runs/search", {"experiment_ids": [experiment_id], "max_results": "NaN"})),
        ("huge-step", _json_post("/runs/log-metric", {**metric, "step": 1e30})),
        ("huge-timestamp", _json_post("/runs/log-metric", {**metric, "timestamp": 2**63})),
        ("huge-experiment-id", {"method": "GET", "path": "/experiments/get",
                                "params": {"experiment_id": "9" * 400}}),
        ("huge-filter-number", _json_post("/runs/search", {"experiment_ids": [experiment_id],
                                                           "filter": "attributes.start_time > " + "9" * 30})),
        ("10000-tags", _json_post("/runs/log-batch", {"run_id": run_id, "tags": [
            {"key": f"t{i}", "value": "v"} for i in range(10_000)]})),
        ("key-with-dotdot", _json_post("/runs/log-parameter", {"run_id": run_id, "key": "../etc", "value": "v"})),
        ("key-absolute", _json_post("/runs/log-parameter", {"run_id": run_id, "key": "/etc/passwd", "value": "v"})),
        ("key-with-nul", _json_post("/runs/set-tag", {"run_id": run_id, "key": "a\x00b", "value": "v"})),
        ("key-double-slash", _json_post("/runs/log-metric", {**metric, "key": "a//b"})),
        ("artifact-path-dotdot", {"method": "GET", "path": "/artifacts/list",
                                  "params": {"run_id": run_id, "path": "../../etc"}}),
        ("long-filter", _json_post("/runs/search", {"experiment_ids": [experiment_id],
                                                    "filter": "tags.t LIKE '" + "%a" * 15_000 + "'"})),
        ("1000-and-clauses", _json_post("/runs/search", {"experiment_ids": [experiment_id],
                                                         "filter": " AND ".join(["metrics.m > 0"] * 1000)})),
        ("sql-or-1-1", _json_post("/runs/search", {"experiment_ids": [experiment_id],
                                                   "filter": "params.p = 'a' OR 1=1"})),
        ("sql-drop-table", _json_post("/runs/search", {"experiment_ids": [experiment_id],
                                                       "filter": "tags.t = ''; DROP TABLE runs; --"})),
        ("sql-union", _json_post("/experiments/search", {"max_results": 10,
                                                         "filter": "name = 'x' UNION SELECT * FROM users"})),
        ("sql-comment-order-by", _json_post("/runs/search", {"experiment_ids": [experiment_id],
                                                             "order_by": ["start_time; DELETE FROM runs"]})),
        ("token-garbage", _json_post("/runs/search", {"experiment_ids": [experiment_id], "page_token": "%%%"})),
        ("token-deep", _json_post("/runs/search", {"experiment_ids": [experiment_id], "page_token": base64.b64encode(
            b"[" * 5000 + b"]" * 5000).decode()})),
        ("gzip-lie", {"method": "POST", "path": "/experiments/create", "data": b'{"name": "gz"}', "headers": {
            "Content-Type": "application/json", "Content-Encoding": "gzip"}}),
        ("wrong-types", _json_post("/experiments/create", {"name": 123, "tags": "notalist"})),
        ("body-is-array", _json_post("/experiments/create", [1, 2, 3])),
        ("no-content-type", {"method": "POST", "path": "/experiments/create", "data": b'{"name": "x"}'}),
    ]


ROWS = _rows("RUN", "EXP")


@pytest.mark.parametrize("row", [r[0] for r in ROWS])
def test_hostile_input_is_a_clear_4xx(world: World, row: str) -> None:
    before = _snapshot(world)
    spec = dict(_rows(world.run_id, world.experiment_id))[row]
    own_authorization = "Authorization" in spec.get("headers", {})
    response = requests.request(spec["method"], world.server.url + API + spec["path"], params=spec.get("params"),
                                data=spec.get("data"), headers=spec.get("headers"), timeout=30,
                                auth=None if own_authorization else world.auth)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    if response.headers.get("Content-Type", "").startswith("application/json"):
        error = response.json()
        assert set(error) >= {"error_code", "message"} and "Traceback" not in error["message"]
    assert "Traceback" not in response.text
    assert requests.get(world.server.url + "/readyz", timeout=10).status_code == 200
    assert _snapshot(world) == before


SMUGGLING = [
    ("cl-and-te", b"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n"),
    ("two-content-lengths", b"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Length: 13\r\nContent-Length: 0\r\n\r\n{\"name\":\"s\"}"),
    ("bad-chunk-size", b"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                       b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
    ("nul-in-path", b"GET /api/2.0/mlflow/experiments/get\x00?experiment_id=0 HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("header-without-colon", b"GET /health HTTP/1.1\r\nHost: x\r\nbroken header\r\n\r\n"),
]


@pytest.mark.parametrize("payload", [p for _, p in SMUGGLING], ids=[n for n, _ in SMUGGLING])
def test_smuggling_shapes_are_refused(world: World, payload: bytes) -> None:
    before = _snapshot(world)
    answer = _raw(world, payload)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), answer[:300]
    assert b"Traceback" not in answer
    assert requests.get(world.server.url + "/readyz", timeout=10).status_code == 200
    assert _snapshot(world) == before


def test_a_real_gzip_body_is_decoded(world: World) -> None:
    name = f"gz-{uuid.uuid4().hex[:8]}"
    response = requests.post(world.server.url + API + "/experiments/create", timeout=10, auth=world.auth,
                             data=gzip.compress(json.dumps({"name": name}).encode()),
                             headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    found = requests.get(world.server.url + API + "/experiments/get-by-name", params={"experiment_name": name},
                         timeout=10, auth=world.auth)
    assert found.json()["experiment"]["experiment_id"] == response.json()["experiment_id"]


def test_server_log_has_no_unhandled_error(world: World) -> None:
    log = world.server.log()
    assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]
