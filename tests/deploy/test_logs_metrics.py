"""What an operator reads: JSON log lines (one per request, request ids, no secret anywhere) and
Prometheus metrics on their own port whose counters match the requests sent."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.support import cli
from tests.server_process import RunningServer, trackgate_server
from tests.services import free_port

pytestmark = pytest.mark.slow

PASSWORD = "log-me-never-" + secrets.token_hex(6)
WRONG_PASSWORD = "wrong-pass-" + secrets.token_hex(6)
COOKIE_SECRET = base64.b64encode(secrets.token_bytes(32)).decode()
SEARCH = "/api/2.0/mlflow/experiments/search"
QUERY = "?max_results=5"
ARTIFACT_ROUTE = "/api/2.0/mlflow-artifacts/artifacts/{path}"


@dataclass
class Setup:
    server: RunningServer
    metrics_url: str
    token: str

    def secrets(self) -> list[str]:
        return [PASSWORD, WRONG_PASSWORD, COOKIE_SECRET, self.token,
                base64.b64encode(f"alice:{PASSWORD}".encode()).decode(),
                base64.b64encode(f"alice:{WRONG_PASSWORD}".encode()).decode()]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    d = tmp_path_factory.mktemp("ops")
    db = f"sqlite:///{d}/trackgate.db"
    assert cli("users", "create", "alice", "--admin", "--backend-store-uri", db, stdin=PASSWORD + "\n").returncode == 0
    issued = cli("tokens", "issue", "--subject", "ci-job", "--backend-store-uri", db)
    assert issued.returncode == 0, issued.stderr
    metrics_port = free_port()
    args = ["--backend-store-uri", db, "--auth", "basic,bearer", "--log-format", "json",
            "--metrics-address", f"127.0.0.1:{metrics_port}", "--cookie-secret", COOKIE_SECRET, "--workers", "2"]
    with trackgate_server(d, *args) as server:
        yield Setup(server, f"http://127.0.0.1:{metrics_port}/metrics", issued.stdout.strip())


def log_entries(server: RunningServer) -> list[dict[str, Any]]:
    lines = [line for line in server.log().splitlines() if line.strip()]
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}") from None
    return entries


def scrape(setup: Setup) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(setup.metrics_url, timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@dataclass
class Traffic:
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    after: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    generated_id: str
    payload_size: int


@pytest.fixture(scope="module")
def traffic(setup: Setup) -> Traffic:
    """One known mix of requests, carrying every test secret, with the metrics before and after."""
    url = setup.server.url
    before = scrape(setup)
    good, wrong = (("alice", PASSWORD), ("alice", WRONG_PASSWORD))
    for _ in range(3):
        assert requests.get(url + SEARCH + QUERY, auth=good, timeout=10).status_code == 200
    for _ in range(2):
        assert requests.get(url + SEARCH + QUERY, auth=wrong, timeout=10).status_code == 401
    assert requests.get(url + SEARCH + QUERY, timeout=10).status_code == 401
    bearer = {"Authorization": f"Bearer {setup.token}"}
    tagged = requests.get(url + SEARCH + QUERY, headers={**bearer, "X-Request-ID": "client-req-0001"}, timeout=10)
    assert tagged.status_code == 200 and tagged.headers["X-Request-Id"] == "client-req-0001"
    untidy = requests.get(url + SEARCH + QUERY, headers={**bearer, "X-Request-ID": "no spaces allowed"}, timeout=10)
    generated = untidy.headers["X-Request-Id"]
    assert generated != "no spaces allowed" and len(generated) >= 16
    # A small artifact (answered whole) and one the gateway streams (1 MiB and more): both counted.
    payloads = {"blob.bin": os.urandom(3000), "big.bin": os.urandom(3 * 1024 * 1024 + 17)}
    for name, payload in payloads.items():
        artifact = url + f"/api/2.0/mlflow-artifacts/artifacts/0/run-a/artifacts/{name}"
        assert requests.put(artifact, data=payload, auth=good, timeout=30).status_code == 200
        assert requests.get(artifact, auth=good, timeout=30).content == payload
    time.sleep(0.3)  # the last lines reach the log file

    return Traffic(before, scrape(setup), generated, sum(len(p) for p in payloads.values()))


def test_request_lines_and_counters(setup: Setup, traffic: Traffic) -> None:
    before, after, generated = traffic.before, traffic.after, traffic.generated_id

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("trackgate_http_requests_total", method="GET", route=SEARCH, status="200") == 5
    assert delta("trackgate_http_requests_total", method="GET", route=SEARCH, status="401") == 3
    assert delta("trackgate_http_request_duration_seconds_count", method="GET", route=SEARCH) == 8
    assert delta("trackgate_auth_total", method="basic", outcome="accepted") == 3 + 2 * 2  # searches, artifacts
    assert delta("trackgate_auth_total", method="basic", outcome="refused") == 2
    assert delta("trackgate_auth_total", method="none", outcome="missing") == 1
    assert delta("trackgate_auth_total", method="bearer", outcome="accepted") == 2
    assert delta("trackgate_artifact_bytes_total", direction="in") == traffic.payload_size
    assert delta("trackgate_artifact_bytes_total", direction="out") == traffic.payload_size
    assert value(after, "trackgate_core_workers") == 2 and value(after, "trackgate_core_available") == 1

    entries = log_entries(setup.server)
    requests_logged = [e for e in entries if e.get("logger") == "trackgate.access"]
    (line,) = [e for e in requests_logged if e.get("request_id") == "client-req-0001"]
    assert line["severity"] == "INFO" and line["time"].endswith("Z")
    assert (line["method"], line["route"], line["status"]) == ("GET", SEARCH, 200)
    assert line["subject"] == "ci-job" and line["auth_method"] == "bearer"
    assert line["duration_ms"] > 0 and line["bytes_out"] > 0 and line["bytes_in"] == 0
    assert line["httpRequest"]["requestMethod"] == "GET" and line["httpRequest"]["status"] == 200
    assert any(e.get("request_id") == generated for e in requests_logged)
    uploads = [e for e in requests_logged if e["method"] == "PUT"]
    downloads = [e for e in requests_logged if e["route"] == ARTIFACT_ROUTE and e["method"] == "GET"]
    assert all(e["route"] == ARTIFACT_ROUTE for e in uploads)
    assert sorted(e["bytes_in"] for e in uploads) == [3000, 3 * 1024 * 1024 + 17]
    assert sorted(e["bytes_out"] for e in downloads) == [3000, 3 * 1024 * 1024 + 17]
    assert not any("blob.bin" in json.dumps(e) for e in entries)  # routes, never raw paths
    refused = [e for e in requests_logged if e["status"] == 401]
    assert len(refused) == 3 and all(e["subject"] is None for e in refused)


def test_no_secret_in_any_log_line(setup: Setup, traffic: Traffic) -> None:
    text = setup.server.log()
    log_entries(setup.server)  # every line is JSON, the core workers' too
    for secret in setup.secrets():
        assert secret not in text


def test_metrics_only_on_their_own_port(setup: Setup) -> None:
    public = requests.get(setup.server.url + "/metrics", auth=("alice", PASSWORD), timeout=5)
    assert "trackgate_http_requests_total" not in public.text


def test_worker_restart_is_counted(setup: Setup) -> None:
    before = value(scrape(setup), "trackgate_core_worker_restarts_total")
    children = [int(p) for p in Path(f"/proc/{setup.server.process.pid}/task/{setup.server.process.pid}/children")
                .read_text().split()]
    os.kill(children[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        samples = scrape(setup)
        if value(samples, "trackgate_core_worker_restarts_total") == before + 1 and value(
                samples, "trackgate_core_workers") == 2:
            break
        time.sleep(0.2)
    assert value(samples, "trackgate_core_worker_restarts_total") == before + 1


def test_expose_prometheus_keeps_multiprocess_state_in_its_directory(tmp_path: Path) -> None:
    """mlflow server's --expose-prometheus DIR: metrics on, values kept in DIR's files."""
    state = tmp_path / "prometheus"
    port = free_port()
    with trackgate_server(tmp_path / "srv", "--expose-prometheus", str(state),
                          "--metrics-address", f"127.0.0.1:{port}") as server:
        for _ in range(2):
            assert requests.get(server.url + SEARCH + QUERY, timeout=10).status_code == 200
        samples = scrape(Setup(server, f"http://127.0.0.1:{port}/metrics", ""))
    assert value(samples, "trackgate_http_requests_total", method="GET", route=SEARCH, status="200") == 2
    assert value(samples, "trackgate_auth_total", method="none", outcome="open") >= 2
    assert any(state.glob("counter_*.db"))
