"""`trackgate server --gateway-workers 2`, as real processes over the real core: both gateway
processes accept on the public port, one killed is restarted, SIGTERM drains both, and the
state they share (session cookies, the failed-credential throttle, metrics) holds across them.

Which process holds a connection is read from /proc (the kernel's socket tables), never guessed:
`connect_to(port, pid)` opens connections until one is accepted by that process. No timing asserts.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway import keys
from gateway.auth import throttle
from tests.gateway.auth.support import PASSWORD, add_user, basic, password_hash
from tests.gateway.support import REPO, port_open
from tests.server_process import RunningServer, trackgate_server
from tests.services import free_port
from tests.support.oidc_fixture import OIDCProvider, login_without_browser, oidc_provider

__all__ = ["oidc_provider"]  # the module-scoped provider fixture, used by name below

pytestmark = pytest.mark.slow

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"
TWO = ("--gateway-workers", "2", "--log-format", "json")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with two_gateways(tmp_path) as running:
        yield running


@contextlib.contextmanager
def two_gateways(
    workdir: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[RunningServer]:
    """`trackgate server --gateway-workers 2`, once both gateway processes accept."""
    with trackgate_server(workdir, *TWO, *args, env={"PYTHONPATH": str(REPO), **(env or {})}, port=port) as server:
        wait_for(lambda: len(gateway_pids(server)) == 2, f"two gateway processes\n{server.log()}")
        yield server


# -- which process holds what, from /proc ----------------------------------------------------------


def wait_for(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _tcp_sockets() -> list[tuple[int, int, str, int]]:
    """(local port, remote port, state, inode) of every IPv4 TCP socket."""
    rows = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
        rows.append((int(local.split(":")[1], 16), int(remote.split(":")[1], 16), state, inode))
    return rows


def _holders(inode: int, pids: list[int] | None = None) -> list[int]:
    """The processes (among `pids`, or all) with socket `inode` open."""
    target = f"socket:[{inode}]"
    found = []
    for pid in pids if pids is not None else [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    found.append(pid)
                    break
            except OSError:
                continue
    return found


def gateway_pids(server: RunningServer) -> list[int]:
    """The processes accepting on the public port: those holding one of its listening sockets
    (the primary holds every extra process's too, so a dead one's is not counted)."""
    port = int(server.url.rsplit(":", 1)[1])
    listening = [inode for local, _, state, inode in _tcp_sockets() if local == port and state == "0A"]
    candidates = sorted({server.process.pid, *_children(server.process.pid)})
    return sorted({pid for inode in listening for pid in _holders(inode, candidates)})


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def accepted_by(conn: socket.socket, candidates: list[int], timeout: float = 30.0) -> int:
    """The process that accepted `conn` (its server side is in that process's descriptor table)."""
    port, client_port = conn.getpeername()[1], conn.getsockname()[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for local, remote, _, inode in _tcp_sockets():
            if local == port and remote == client_port and inode:
                holders = _holders(inode, candidates)
                if holders:
                    return holders[0]
        time.sleep(0.01)
    raise AssertionError("no gateway process accepted the connection")


def connect_to(server: RunningServer, pid: int) -> http.client.HTTPConnection:
    """An HTTP connection accepted by gateway process `pid` of `server`."""
    return connect_to_port(int(server.url.rsplit(":", 1)[1]), pid, gateway_pids(server))


def connect_to_port(port: int, pid: int, candidates: list[int], attempts: int = 200) -> http.client.HTTPConnection:
    """An HTTP connection to `port` accepted by process `pid` (others opened meanwhile are closed)."""
    for _ in range(attempts):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        if accepted_by(sock, candidates) == pid:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.sock = sock
            return conn
        sock.close()
    raise AssertionError(f"process {pid} accepted none of {attempts} connections")


def call(conn: http.client.HTTPConnection, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read()


def access_pids(server: RunningServer, path_part: str) -> dict[str, int]:
    """request id -> pid of the gateway process that logged it, for requests to `path_part`."""
    found = {}
    for line in server.log().splitlines():
        if '"trackgate.access"' in line and path_part in line:
            entry = json.loads(line)
            found[entry["request_id"]] = entry["pid"]
    return found


# -- the tests ---------------------------------------------------------------------------------------


def test_both_gateway_processes_answer_on_the_public_port(server: RunningServer) -> None:
    primary, extra = gateway_pids(server)
    assert server.process.pid in (primary, extra)
    ids = {}
    for pid in (primary, extra):
        for _ in range(3):
            conn = connect_to(server, pid)
            request_id = uuid.uuid4().hex
            assert call(conn, SEARCH, {"X-Request-Id": request_id})[0] == 200
            conn.close()
            ids[request_id] = pid
    # The access log of each process names its own pid, with the request id end to end.
    wait_for(lambda: set(ids) <= set(access_pids(server, "experiments/search")), "the access log lines")
    logged = access_pids(server, "experiments/search")
    assert {rid: logged[rid] for rid in ids} == ids


def test_a_killed_gateway_process_is_restarted_and_the_server_keeps_answering(server: RunningServer) -> None:
    extra = next(pid for pid in gateway_pids(server) if pid != server.process.pid)
    os.kill(extra, signal.SIGKILL)
    wait_for(lambda: "was killed by SIGKILL; restarting it" in server.log(), "the restart notice")
    for _ in range(20):  # meanwhile the primary answers every new connection
        assert requests.get(server.url + SEARCH, timeout=30).status_code == 200

    def replaced() -> bool:
        pids = gateway_pids(server)
        return len(pids) == 2 and extra not in pids

    wait_for(replaced, f"a new gateway process\n{server.log()}")
    new = next(pid for pid in gateway_pids(server) if pid != server.process.pid)
    assert call(connect_to(server, new), SEARCH)[0] == 200
    assert requests.get(server.url + "/readyz", timeout=30).status_code == 200


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def test_sigterm_drains_in_flight_requests_in_both_processes(server: RunningServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    pids = gateway_pids(server)
    open_requests: list[tuple[socket.socket, bytes]] = []
    for i, pid in enumerate(pids):
        body = json.dumps({"name": f"created-while-draining-{i}"}).encode()
        conn = connect_to(server, pid).sock
        # A request whose body is still arriving is in flight in the gateway and in the core.
        conn.sendall(
            b"POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        )
        assert conn.recv(65536).startswith(b"HTTP/1.1 100")  # dispatched to its handler
        conn.sendall(_chunk(body[:7]))
        open_requests.append((conn, body))
    server.process.send_signal(signal.SIGTERM)
    wait_for(lambda: not port_open(port), "the public port to close in every process")
    for conn, body in open_requests:
        conn.sendall(_chunk(body[7:]) + b"0\r\n\r\n")
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
        conn.close()
        assert response.startswith(b"HTTP/1.1 200"), (response, server.log())
    assert server.process.wait(60) == 0, server.log()
    assert not [
        pid for pid in pids if Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()
    ]


def test_extra_gateway_processes_die_with_the_primary(tmp_path: Path) -> None:
    with two_gateways(tmp_path) as server:
        extra = [pid for pid in gateway_pids(server) if pid != server.process.pid]
        server.process.kill()  # no chance to stop them: the kernel's parent-death signal must
        server.process.wait()
        wait_for(lambda: not any(_alive(pid) for pid in extra), "the extra gateway process to exit")


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_sighup_reloads_the_certificate_in_every_gateway_process(tmp_path: Path) -> None:
    from cryptography import x509

    from tests.gateway.auth.test_tls import Certs

    certs = Certs(tmp_path)
    tls = ("--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server-key.pem"))
    env = {"PYTHONPATH": str(REPO)}
    with trackgate_server(tmp_path, *TWO, *tls, env=env, wait=False) as server:  # https: no plain /readyz
        wait_for(lambda: len(gateway_pids(server)) == 2, f"two gateway processes\n{server.log()}")
        port, pids = int(server.url.rsplit(":", 1)[1]), gateway_pids(server)

        def serial(pid: int) -> int:
            raw = connect_to_port(port, pid, pids).sock
            assert raw is not None
            with certs.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as conn:
                der = conn.getpeercert(binary_form=True)
            assert der is not None
            return x509.load_der_x509_certificate(der).serial_number

        before = {pid: serial(pid) for pid in pids}
        new = certs.write_server_cert("127.0.0.1").serial_number
        assert new not in before.values()
        server.process.send_signal(signal.SIGHUP)
        for pid in pids:  # the primary forwarded it: each process swapped its own copy
            wait_for(lambda pid=pid: serial(pid) == new, f"process {pid} to serve the new certificate")


def test_core_link_http_works_through_both_gateway_processes(tmp_path: Path) -> None:
    with two_gateways(tmp_path, "--core-link", "http") as server:
        for pid in gateway_pids(server):
            assert call(connect_to(server, pid), SEARCH)[0] == 200


def test_the_throttle_refuses_at_the_configured_total_across_processes(tmp_path: Path) -> None:
    with two_gateways(tmp_path, "--auth", "basic") as server:
        add_user(f"sqlite:///{tmp_path}/trackgate.db", "alice", password_hash(PASSWORD))
        good, wrong = basic("alice", PASSWORD), basic("alice", "wrong")
        assert requests.get(server.url + SEARCH, headers={"Authorization": good}, timeout=30).status_code == 200
        refused = 0
        for pid in gateway_pids(server):
            while True:
                conn = connect_to(server, pid)
                status, _ = call(conn, SEARCH, {"Authorization": wrong})
                conn.close()
                if status == 429:
                    break
                assert status == 401
                refused += 1
        # Each process allows its share; together, exactly the configured limit, never N times it.
        assert refused == throttle.MAX_FAILURES


def test_metrics_sum_every_gateway_process_and_supervisor_gauges_come_from_the_primary(tmp_path: Path) -> None:
    metrics_port = free_port()
    with two_gateways(tmp_path, "--metrics-address", f"127.0.0.1:{metrics_port}") as server:
        pids = gateway_pids(server)
        for pid in pids:
            conn = connect_to(server, pid)
            for _ in range(5):
                assert call(conn, SEARCH)[0] == 200
            conn.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30) as resp:
            text = resp.read().decode()
    served = sum(
        float(value)
        for labels, value in re.findall(r"^trackgate_http_requests_total\{([^}]*)\} (\S+)$", text, re.M)
        if 'route="/api/2.0/mlflow/experiments/search"' in labels and 'status="200"' in labels
    )
    assert served == 5 * len(pids)
    assert re.search(r"^trackgate_gateway_processes 2\.0$", text, re.M), text
    assert re.search(r"^trackgate_core_workers 1\.0$", text, re.M), text


def test_a_session_cookie_issued_by_one_process_is_accepted_by_the_other(
    oidc_provider: OIDCProvider, tmp_path: Path
) -> None:
    # No cookie_secret configured: it is generated once and kept in the database, for every process.
    with two_gateways(
        tmp_path, *oidc_provider.gateway_args(), env=oidc_provider.gateway_env(), port=oidc_provider.rp_ports[0]
    ) as server:
        browser = requests.Session()
        signed_in = login_without_browser(browser, server.url + "/oauth2/start?rd=/", "alice@example.test")
        assert signed_in.status_code == 200, signed_in.text
        cookie = browser.cookies.get("trackgate_session")
        assert cookie
        callbacks = access_pids(server, "/oauth2/callback")
        issuer = next(iter(callbacks.values()))
        other = next(pid for pid in gateway_pids(server) if pid != issuer)
        status, body = call(connect_to(server, other), SEARCH, {"Cookie": f"trackgate_session={cookie}"})
        assert status == 200, body


def test_the_mlflow_client_works_end_to_end_through_two_gateway_processes(server: RunningServer) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(server.url)
    try:
        mlflow.set_experiment(f"prefork-{uuid.uuid4().hex[:8]}")
        artifact = Path(server.log_path).with_name("note.txt")
        artifact.write_text("through two gateways")
        runs = []
        for i in range(8):  # each run's calls take whichever connection, so both processes serve
            with mlflow.start_run() as run:
                mlflow.log_param("i", i)
                for step in range(5):
                    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
                mlflow.log_artifact(str(artifact))
            runs.append(run.info.run_id)
        client = MlflowClient()
        for run_id in runs:
            assert [m.step for m in client.get_metric_history(run_id, "loss")] == [0, 1, 2, 3, 4]
            local = client.download_artifacts(run_id, "note.txt", str(Path(server.log_path).parent))
            assert Path(local).read_text() == "through two gateways"
    finally:
        mlflow.set_tracking_uri("")


async def test_an_extra_gateway_process_answers_503_while_no_core_worker_is_alive(
    gateway_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The primary in this process over the stand-in core; the extra gateway process is real."""
    gw = await gateway_factory(gateway_workers="2")
    extra = gw.app[keys.gateway_pool].pids[0]
    conn = await asyncio.to_thread(connect_to_port, gw.port, extra, [os.getpid(), extra])
    status, body = await asyncio.to_thread(call, conn, "/pid")
    assert status == 200
    core = json.loads(body)["pid"]
    # The replacement starts slowly, so the gap in which the gateway must answer 503 is visible.
    monkeypatch.setenv("FAKE_CORE_START_DELAY", "2")
    os.kill(core, signal.SIGKILL)
    supervisor = gw.app[keys.supervisor]
    while supervisor.available:  # the primary noticed, and told the extra process at once
        await asyncio.sleep(0.01)
    status, body = await asyncio.to_thread(call, conn, "/pid")
    assert status == 503, body
    assert json.loads(body)["error_code"] == "TEMPORARILY_UNAVAILABLE"
    while True:  # and it serves again once the new worker answers it
        status, body = await asyncio.to_thread(call, conn, "/pid")
        if status == 200:
            break
        assert status == 503
    assert json.loads(body)["pid"] != core
