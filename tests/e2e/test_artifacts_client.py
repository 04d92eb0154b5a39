"""Artifacts with the official mlflow client, unchanged, through `trackgate server` (gateway + core).

Destinations: local disk, and S3 served by moto's standalone server on loopback. Also the two
other deployment shapes MLflow users run: `--artifacts-only` next to a tracking server with
`--no-serve-artifacts`, and `--no-serve-artifacts` with the client writing straight to S3.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tests.artifacts.stores import S3Server, moto_s3
from tests.e2e.conftest import proxied_server
from tests.server_process import RunningServer, trackgate_server
from tracking_core.artifacts.local import TEMP_PREFIX

pytestmark = pytest.mark.slow
MiB = 1024 * 1024
ART = "/api/2.0/mlflow-artifacts/artifacts"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="module", params=["local", "s3"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    s3 = request.getfixturevalue("s3") if request.param == "s3" else None
    with proxied_server(request.param, tmp_path_factory.mktemp(f"server-{request.param}"), s3) as running:
        yield running


@pytest.fixture
def tracking(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    mlflow.set_tracking_uri(server.url)
    yield server.url
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri("")


def test_every_logging_flow_and_a_byte_exact_download(tracking: str, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    src = tmp_path / "src"
    (src / "nested" / "deeper").mkdir(parents=True)
    (src / "top.txt").write_text("top")
    (src / "nested" / "data.bin").write_bytes(os.urandom(3 * MiB + 17))
    (src / "nested" / "deeper" / "empty.txt").write_bytes(b"")
    single = tmp_path / "model.pkl"
    single.write_bytes(os.urandom(1000))

    mlflow.set_experiment(f"artifacts-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as run:
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
        mlflow.log_artifact(str(single))
        mlflow.log_artifact(str(single), artifact_path="models/v1")
        mlflow.log_artifacts(str(src), artifact_path="tree")
        mlflow.log_text("hello ✓", "notes/hello.txt")
        mlflow.log_dict({"lr": 0.1, "layers": [1, 2]}, "config.json")
        mlflow.log_image(np.full((8, 8, 3), 200, dtype=np.uint8), "images/grey.png")
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        mlflow.log_figure(fig, "plots/line.png")
        plt.close(fig)

    client = MlflowClient()
    top = {(f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id)}
    assert top == {
        ("model.pkl", False), ("models", True), ("tree", True), ("notes", True),
        ("config.json", False), ("images", True), ("plots", True),
    }  # fmt: skip
    nested = client.list_artifacts(run.info.run_id, "tree/nested")
    assert [(f.path, f.file_size) for f in nested] == [
        ("tree/nested/data.bin", 3 * MiB + 17),
        ("tree/nested/deeper", None),
    ]
    assert client.list_artifacts(run.info.run_id, "model.pkl") == []

    out = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "out")))
    assert tree_digests(out / "tree") == tree_digests(src)
    assert sha256_file(out / "model.pkl") == sha256_file(single) == sha256_file(out / "models/v1/model.pkl")
    assert (out / "notes/hello.txt").read_text() == "hello ✓"
    assert mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/config.json") == {"lr": 0.1, "layers": [1, 2]}
    assert (out / "images/grey.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one = client.download_artifacts(run.info.run_id, "tree/nested/data.bin", str(tmp_path / "one"))
    assert sha256_file(Path(one)) == sha256_file(src / "nested" / "data.bin")

    # The web UI's routes answer through the same server.
    r = requests.get(
        f"{tracking}/get-artifact", params={"run_uuid": run.info.run_id, "path": "notes/hello.txt"}
    )
    assert r.status_code == 200 and r.content == "hello ✓".encode()
    listing = requests.get(
        f"{tracking}/ajax-api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id}
    )
    assert {f["path"] for f in listing.json()["files"]} >= {"tree", "model.pkl"}


def test_multipart_upload_above_the_threshold(
    tracking: str,
    server: RunningServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """With the client's multipart switched on: S3 takes presigned parts, local falls back to PUT."""
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(4 * MiB))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * MiB))  # S3's smallest part
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(12 * MiB + 5))
    mlflow.set_experiment(f"mpu-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big), "model")
    info = requests.get(f"{tracking}/api/3.0/mlflow/server-info").json()
    key_suffix = f"{run.info.experiment_id}/{run.info.run_id}/artifacts/model/weights.bin"
    assert info["multipart_uploads_enabled"] is False, "the client's own switch is what enables multipart here"
    if request.node.callspec.params["server"] == "s3":
        s3: S3Server = request.getfixturevalue("s3")
        head = s3.client().head_object(Bucket=s3.bucket, Key=f"proxied/{key_suffix}")
        assert head["ETag"].strip('"').endswith("-3"), "stored as a 3-part multipart upload"
    got = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="model/weights.bin", dst_path=str(tmp_path / "d")
    )
    assert sha256_file(Path(got)) == sha256_file(big)


def test_interrupted_upload_through_the_gateway(tracking: str, server: RunningServer) -> None:
    """A client that announces 8 MiB, sends 3 MiB and hangs up: nothing appears, the server carries on."""
    host, port = server.url.removeprefix("http://").split(":")

    async def cut() -> None:
        _reader, writer = await asyncio.open_connection(host, int(port))
        head = (
            f"PUT {ART}/cut/partial.bin HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {8 * MiB}\r\n\r\n"
        )
        writer.write(head.encode() + b"z" * (3 * MiB))
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.close()
        await writer.wait_closed()

    asyncio.run(cut())
    assert requests.get(f"{server.url}{ART}/cut/partial.bin").status_code == 404
    assert requests.get(f"{server.url}{ART}", params={"path": "cut"}).json() == {}
    assert requests.get(f"{server.url}/readyz").status_code == 200
    assert requests.put(f"{server.url}{ART}/cut/whole.bin", data=b"ok").status_code == 200
    assert requests.get(f"{server.url}{ART}/cut/whole.bin").content == b"ok"
    local = Path(server.log_path).parent / "artifacts"
    if local.exists():
        assert [p for p in local.rglob(f"{TEMP_PREFIX}*")] == []


def test_artifacts_only_next_to_a_tracking_server(tmp_path: Path) -> None:
    """MLflow's split deployment: tracking without artifacts, artifacts without a database."""
    with trackgate_server(tmp_path / "art", "--artifacts-only") as art:
        root = "mlflow-artifacts://" + art.url.removeprefix("http://") + "/"
        with trackgate_server(
            tmp_path / "trk", "--no-serve-artifacts", "--default-artifact-root", root
        ) as trk:
            mlflow.set_tracking_uri(trk.url)
            try:
                mlflow.set_experiment(f"split-{uuid.uuid4().hex[:8]}")
                with mlflow.start_run() as run:
                    mlflow.log_text("via the artifacts server", "a.txt")
                assert run.info.artifact_uri.startswith(root)
                assert [f.path for f in MlflowClient().list_artifacts(run.info.run_id)] == ["a.txt"]
                assert (
                    mlflow.artifacts.load_text(f"{run.info.artifact_uri}/a.txt") == "via the artifacts server"
                )
                r = requests.put(f"{trk.url}{ART}/x.txt", data=b"x")
                assert r.status_code == 503 and "--serve-artifacts" in r.json()["detail"]
            finally:
                mlflow.set_tracking_uri("")
        stored = list((tmp_path / "art" / "artifacts").rglob("a.txt"))
        assert len(stored) == 1 and stored[0].read_text() == "via the artifacts server"
        r = requests.post(f"{art.url}/api/2.0/mlflow/experiments/create", json={"name": "x"})
        assert r.status_code == 503 and "`--artifacts-only` mode" in r.text
        mlflow.set_tracking_uri(art.url)
        try:
            with pytest.raises(MlflowException):
                mlflow.set_experiment("no-tracking-here")
        finally:
            mlflow.set_tracking_uri("")


def test_no_serve_artifacts_client_writes_to_s3(
    tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client talks to S3 itself; the server still lists the run's files for the UI."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    root = f"s3://{s3.bucket}/direct"
    with trackgate_server(
        tmp_path, "--no-serve-artifacts", "--default-artifact-root", root, env=s3.env
    ) as srv:
        mlflow.set_tracking_uri(srv.url)
        try:
            mlflow.set_experiment(f"direct-{uuid.uuid4().hex[:8]}")
            with mlflow.start_run() as run:
                mlflow.log_text("straight to S3", "d/note.txt")
        finally:
            mlflow.set_tracking_uri("")
        assert run.info.artifact_uri.startswith(root)
        listing = requests.get(
            f"{srv.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id, "path": "d"}
        )
        assert listing.json()["files"] == [{"path": "d/note.txt", "is_dir": False, "file_size": 14}]
        r = requests.get(f"{srv.url}/get-artifact", params={"run_id": run.info.run_id, "path": "d/note.txt"})
        assert r.content == b"straight to S3"
        assert requests.get(f"{srv.url}{ART}", params={"path": "x"}).status_code == 503


def test_gc_removes_exactly_the_deleted_runs(tmp_path: Path) -> None:
    with trackgate_server(tmp_path) as srv:
        mlflow.set_tracking_uri(srv.url)
        try:
            mlflow.set_experiment(f"gc-{uuid.uuid4().hex[:8]}")
            runs = []
            for i in range(3):
                with mlflow.start_run() as run:
                    mlflow.log_metrics({"loss": 1.0 / (i + 1), "acc": 0.5})
                    mlflow.log_text(f"run {i}", "out.txt")
                runs.append(run)
            client = MlflowClient()
            client.delete_run(runs[1].info.run_id)
        finally:
            mlflow.set_tracking_uri("")
        argv = [sys.executable, "-m", "gateway.cli", "gc", "--backend-store-uri", f"sqlite:///{tmp_path}/trackgate.db",
                "--artifacts-destination", str(tmp_path / "artifacts")]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"removed run {runs[1].info.run_id}" in done.stdout
        assert "removed 1 run(s)" in done.stdout
        mlflow.set_tracking_uri(srv.url)
        try:
            with pytest.raises(MlflowException, match="not found"):
                MlflowClient().get_run(runs[1].info.run_id)
            for kept in (runs[0], runs[2]):
                assert MlflowClient().get_run(kept.info.run_id).data.metrics["acc"] == 0.5
                assert mlflow.artifacts.load_text(f"runs:/{kept.info.run_id}/out.txt").startswith("run")
        finally:
            mlflow.set_tracking_uri("")
    experiment_dir = tmp_path / "artifacts" / runs[1].info.experiment_id
    assert sorted(p.name for p in experiment_dir.iterdir()) == sorted(
        [runs[0].info.run_id, runs[2].info.run_id]
    )
