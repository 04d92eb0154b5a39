"""The framed link inside a real `trackgate server` (gateway and core worker processes): a 1 GiB
artifact through it both ways with flat memory in both processes, and a core worker killed
mid-request, which must give the client a 503 or a cut-off body promptly, never a hang."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.server_process import RunningServer, trackgate_server

MIB = 1024 * 1024
ART = "/api/2.0/mlflow-artifacts/artifacts"
BLOCK = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with trackgate_server(Path(tmp_path_factory.mktemp("link"))) as running:
        yield running


def core_pids(server: RunningServer) -> list[int]:
    pid = server.process.pid
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def body(mib: int, sent: list[int] | None = None) -> Iterator[bytes]:
    for _ in range(mib):
        if sent is not None:
            sent.append(len(BLOCK))
        yield BLOCK


def test_the_link_is_framed(server: RunningServer) -> None:
    """The real worker speaks frames: the gateway never fell back to HTTP."""
    assert requests.get(server.url + "/api/2.0/mlflow/experiments/get?experiment_id=0", timeout=10).ok
    assert "does not speak the framed link" not in server.log()


def test_a_1_gib_artifact_streams_both_ways_with_flat_memory(server: RunningServer) -> None:
    gateway, (core,) = server.process.pid, core_pids(server)
    # Warm both processes up (imports, first request) before taking the baseline.
    requests.put(server.url + f"{ART}/0/warm.bin", data=body(4), timeout=60).raise_for_status()
    requests.get(server.url + f"{ART}/0/warm.bin", timeout=60).raise_for_status()
    before = {pid: status_kib(pid, "VmRSS") for pid in (gateway, core)}

    size = 1024
    response = requests.put(server.url + f"{ART}/0/big.bin", data=body(size), timeout=600)
    assert response.status_code == 200, response.text
    digest = hashlib.sha256()
    received = 0
    with requests.get(server.url + f"{ART}/0/big.bin", stream=True, timeout=600) as download:
        assert download.status_code == 200
        assert int(download.headers["Content-Length"]) == size * MIB
        for chunk in download.iter_content(MIB):
            digest.update(chunk)
            received += len(chunk)
    assert received == size * MIB
    assert digest.hexdigest() == hashlib.sha256(BLOCK * size).hexdigest()
    for pid, name in ((gateway, "gateway"), (core, "core")):
        grown = (status_kib(pid, "VmHWM") - before[pid]) / 1024
        assert grown < 64, f"the {name}'s peak memory grew {grown:.0f} MiB for a 1 GiB body"


def test_a_core_killed_mid_upload_answers_503_not_a_hang(server: RunningServer) -> None:
    (core,) = core_pids(server)
    sent: list[int] = []

    def kill_when_started() -> None:
        while sum(sent) < 8 * MIB:
            time.sleep(0.01)
        os.kill(core, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    started = time.monotonic()

    def slow_body() -> Iterator[bytes]:
        for chunk in body(4096, sent):
            yield chunk
            time.sleep(0.002)

    try:
        response = requests.put(server.url + f"{ART}/0/cut.bin", data=slow_body(), timeout=60)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    except requests.ConnectionError:
        pass  # the gateway may close the connection while the body is still being sent
    finally:
        killer.join()
    assert time.monotonic() - started < 30
    # The gateway closed the connection after its 503 rather than reading and discarding the rest
    # of the body for aiohttp's 10 s lingering time, in which the client sent nearly all 4 GiB.
    assert sum(sent) < 1024 * MIB
    _wait_serving(server)


def test_a_core_killed_mid_download_cuts_the_body_not_hangs(server: RunningServer) -> None:
    requests.put(server.url + f"{ART}/0/dl.bin", data=body(256), timeout=120).raise_for_status()
    (core,) = core_pids(server)
    received = 0
    started = time.monotonic()
    with (
        pytest.raises(requests.exceptions.ChunkedEncodingError),
        requests.get(server.url + f"{ART}/0/dl.bin", stream=True, timeout=30) as download,
    ):
        assert download.status_code == 200
        for chunk in download.iter_content(MIB):
            received += len(chunk)
            if received >= 8 * MIB and core in core_pids(server):
                os.kill(core, signal.SIGKILL)
            time.sleep(0.005)
    assert time.monotonic() - started < 30
    assert received < 256 * MIB  # cut off, never a complete-looking body
    _wait_serving(server)


def _wait_serving(server: RunningServer) -> None:
    """The supervisor restarts the worker; meanwhile 503 + Retry-After, then answers again."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = requests.get(server.url + "/api/2.0/mlflow/experiments/get?experiment_id=0", timeout=10)
        if response.status_code == 200:
            return
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        time.sleep(0.05)
    raise AssertionError("the server did not serve again after its core worker was killed")


def test_core_link_http_still_serves_over_http(tmp_path: Path) -> None:
    with trackgate_server(tmp_path, "--core-link", "http") as running:
        created = requests.post(
            running.url + "/api/2.0/mlflow/experiments/create", json={"name": "over-http"}, timeout=10
        )
        assert created.status_code == 200, created.text
        got = requests.get(
            running.url + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=over-http", timeout=10
        )
        assert got.json()["experiment"]["experiment_id"] == created.json()["experiment_id"]
