"""Scale-out proof: three `trackgate server` replicas on one database and one S3 bucket.

The replicas start together on an empty database (one bootstraps it under the schema lock, the
others find it done), share every piece of state through the database and the bucket (a user,
a token, a browser session made on one work on the others), lose nothing to concurrent writers,
and a replica killed mid-traffic loses no write it acknowledged: a client that gets no answer
retries on another replica, as behind a load balancer. On PostgreSQL and on MariaDB.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.artifacts.stores import S3Server, moto_s3
from tests.server_process import RunningServer, trackgate_server, wait_ready
from tests.services import free_port, throwaway_mariadb, throwaway_postgres
from tests.support.oidc_fixture import CLIENT_ID, CLIENT_SECRET, login_without_browser, running_provider

pytestmark = pytest.mark.slow

ADMIN = ("root-admin", "admin-pw-for-replicas")
API = "/api/2.0/mlflow"


@dataclass
class Cluster:
    replicas: list[RunningServer]
    db_uri: str
    s3: S3Server
    metrics_url: str  # replica 0's

    def url(self, i: int, path: str) -> str:
        return self.replicas[i % len(self.replicas)].url + path


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKGATE_", "MLFLOW_"))}
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=120)


@contextlib.contextmanager
def database(backend: str) -> Iterator[str]:
    with (throwaway_postgres() if backend == "postgresql" else throwaway_mariadb()) as uri:
        yield uri


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp(f"replicas-{request.param}")
    ports = [free_port() for _ in range(3)]
    with contextlib.ExitStack() as stack:
        db_uri = stack.enter_context(database(request.param))
        s3 = stack.enter_context(moto_s3())
        provider = stack.enter_context(running_provider(workdir / "oidc", ports))
        args = ["--backend-store-uri", db_uri, "--artifacts-destination", f"s3://{s3.bucket}/shared",
                "--auth", "basic,bearer,oidc", "--oidc-issuer-url", provider.issuer,
                "--oidc-client-id", CLIENT_ID, "--oidc-client-secret", CLIENT_SECRET,
                "--oidc-email-domains", "example.test"]
        # All three at once on the empty database: the bootstrap race the schema lock settles.
        metrics_port = free_port()
        metrics = ["--metrics-address", f"127.0.0.1:{metrics_port}"]
        replicas = [stack.enter_context(trackgate_server(workdir / f"r{i}", *args, *(metrics if i == 0 else []),
                                                         "--workers", "2", env=s3.env, port=port, wait=False))
                    for i, port in enumerate(ports)]
        for replica in replicas:
            try:
                wait_ready(replica.url, replica.process, timeout=90)
            except RuntimeError as exc:
                raise AssertionError(f"{exc}\n{replica.log()}") from None
        created = cli("users", "create", ADMIN[0], "--admin", "--backend-store-uri", db_uri, stdin=ADMIN[1] + "\n")
        assert created.returncode == 0, created.stderr
        yield Cluster(replicas, db_uri, s3, f"http://127.0.0.1:{metrics_port}/metrics")


def test_user_token_and_session_made_on_one_replica_work_on_the_others(cluster: Cluster) -> None:
    made = requests.post(cluster.url(0, API + "/users/create"), auth=ADMIN,
                         json={"username": "bob", "password": "bob-secret-1"}, timeout=10)
    assert made.status_code == 200, made.text
    for i in (1, 2):
        assert requests.get(cluster.url(i, API + "/users/current"), auth=("bob", "bob-secret-1"),
                            timeout=10).status_code == 200
    # The token signing key was generated once (by whichever replica came first) and is shared.
    issued = cli("tokens", "issue", "--subject", "ci-job", "--backend-store-uri", cluster.db_uri)
    assert issued.returncode == 0, issued.stderr
    bearer = {"Authorization": "Bearer " + issued.stdout.strip()}
    for i in range(3):
        answer = requests.get(cluster.url(i, API + "/experiments/search?max_results=1"), headers=bearer, timeout=10)
        assert answer.status_code == 200, (i, answer.text)
    # A browser session signed in through replica 0 (cookie secret generated once, in the database).
    browser = requests.Session()
    signed_in = login_without_browser(browser, cluster.url(0, "/oauth2/start?rd=/version"), "carol@example.test")
    assert signed_in.status_code == 200, signed_in.text
    for i in (1, 2):
        answer = browser.get(cluster.url(i, API + "/experiments/search?max_results=1"),
                             headers={"Accept": "application/json"}, timeout=10)
        assert answer.status_code == 200, (i, answer.text)
    anonymous = requests.get(cluster.url(1, API + "/experiments/search?max_results=1"),
                             headers={"Accept": "application/json"}, timeout=10)
    assert anonymous.status_code == 401
    # An artifact written through one replica is read through another (one bucket).
    path = "/api/2.0/mlflow-artifacts/artifacts/0/shared/blob.bin"
    assert requests.put(cluster.url(0, path), data=b"x" * 70_000, auth=ADMIN, timeout=10).status_code == 200
    assert requests.get(cluster.url(2, path), auth=ADMIN, timeout=10).content == b"x" * 70_000


def test_core_workers_report_their_database_pools(cluster: Cluster) -> None:
    """Each core worker writes its pool's use to the shared multiprocess directory; /metrics sums them."""
    assert requests.get(cluster.url(0, API + "/experiments/search?max_results=1"), auth=ADMIN, timeout=10).ok
    deadline = time.monotonic() + 20
    while True:
        text = requests.get(cluster.metrics_url, timeout=5).text
        pool = {sample.labels["state"]: sample.value for family in text_string_to_metric_families(text)
                if family.name == "trackgate_db_pool_connections" for sample in family.samples}
        # Two workers, each with a pool of at least --db-pool-size (5) connections, summed.
        if pool.get("size", 0) >= 2 * 5 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert pool.get("size", 0) >= 10 and pool["size"] % 2 == 0, pool
    assert 0 <= pool["checked_out"] <= pool["size"] and pool["idle"] >= 1


def _create_run(cluster: Cluster, i: int) -> str:
    answer = requests.post(cluster.url(i, API + "/runs/create"), auth=ADMIN,
                           json={"experiment_id": "0", "start_time": 1}, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["run"]["info"]["run_id"])


def _writers(cluster: Cluster, runs: list[str], batches: int, alive: list[int], killed: threading.Event | None,
             acknowledged: list[tuple[str, int]], failures: list[str]) -> None:
    """One thread per run: `batches` log-batch calls of 10 metrics each, spread over the live
    replicas; an unanswered call is retried on the next replica (the load balancer's job)."""
    lock = threading.Lock()

    def write(run_id: str, offset: int) -> None:
        picks = itertools.cycle(range(offset, offset + 3))
        for batch in range(batches):
            metrics = [{"key": "loss", "value": batch + k / 10, "timestamp": 1, "step": batch * 10 + k}
                       for k in range(10)]
            for _attempt in range(6):
                i = next(picks) % 3
                if i not in alive:
                    continue
                try:
                    answer = requests.post(cluster.url(i, API + "/runs/log-batch"), auth=ADMIN,
                                           json={"run_id": run_id, "metrics": metrics}, timeout=15)
                except requests.RequestException:
                    continue  # no answer: not acknowledged; retry elsewhere
                if answer.status_code == 200:
                    with lock:
                        acknowledged.extend((run_id, m["step"]) for m in metrics)
                    break
                if answer.status_code != 503:
                    with lock:
                        failures.append(f"{answer.status_code} {answer.text[:200]}")
                    break
            if killed is not None and batch == batches // 3:
                killed.wait(30)  # every writer is mid-run when the replica dies

    threads = [threading.Thread(target=write, args=(run_id, n)) for n, run_id in enumerate(runs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


def _steps(cluster: Cluster, i: int, run_id: str) -> set[int]:
    answer = requests.get(cluster.url(i, API + "/metrics/get-history"), auth=ADMIN,
                          params={"run_id": run_id, "metric_key": "loss", "max_results": 25000}, timeout=30)
    assert answer.status_code == 200, answer.text
    return {int(m["step"]) for m in answer.json().get("metrics", [])}


def test_concurrent_writers_on_three_replicas_lose_nothing(cluster: Cluster) -> None:
    runs = [_create_run(cluster, i) for i in range(6)]
    acknowledged: list[tuple[str, int]] = []
    failures: list[str] = []
    _writers(cluster, runs, 15, [0, 1, 2], None, acknowledged, failures)
    assert not failures
    assert len(acknowledged) == 6 * 15 * 10
    for n, run_id in enumerate(runs):
        assert _steps(cluster, n + 1, run_id) == set(range(150))  # read back through another replica


def test_replica_killed_mid_traffic_loses_no_acknowledged_write(cluster: Cluster) -> None:
    runs = [_create_run(cluster, 0) for _ in range(6)]
    acknowledged: list[tuple[str, int]] = []
    failures: list[str] = []
    alive = [0, 1, 2]
    killed = threading.Event()
    victim = cluster.replicas[2]

    def kill_soon() -> None:
        time.sleep(1.0)
        victim.process.send_signal(signal.SIGKILL)  # no drain: the hard case
        victim.process.wait()
        killed.set()

    killer = threading.Thread(target=kill_soon)
    killer.start()
    _writers(cluster, runs, 12, alive, killed, acknowledged, failures)
    killer.join()
    assert killed.is_set() and victim.process.returncode == -signal.SIGKILL
    assert not failures, failures[:3]
    assert acknowledged
    by_run: dict[str, set[int]] = {}
    for run_id, step in acknowledged:
        by_run.setdefault(run_id, set()).add(step)
    for run_id, steps in by_run.items():
        stored = _steps(cluster, 0, run_id)
        assert steps <= stored, f"lost {sorted(steps - stored)[:10]} of run {run_id}"
