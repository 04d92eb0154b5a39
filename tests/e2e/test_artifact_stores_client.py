"""FTP, SFTP and Azure Blob artifact stores with the official mlflow client, through `trackgate server`.

Each store is a real server on loopback (pyftpdlib, Debian's sshd, Azurite; see tests/artifacts/).
Two shapes per store: the server proxies artifacts to the store (`--artifacts-destination`), and
`--no-serve-artifacts`, where the mlflow client writes to the store with its own library (ftplib,
pysftp, azure-storage-blob) and the server still lists and serves the run's files for the UI.
Each test also looks at the store itself, so a file "uploaded" nowhere cannot pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient

from tests.artifacts.azurite_server import AzuriteServer, azurite
from tests.artifacts.ftp_server import FtpServer, pyftpdlib_server
from tests.artifacts.sshd_server import SshServer, openssh_server
from tests.server_process import trackgate_server

pytestmark = pytest.mark.slow
MiB = 1024 * 1024
ART = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass
class Store:
    kind: str
    server: FtpServer | SshServer | AzuriteServer

    def uri(self, path: str) -> str:
        return self.server.uri(path)

    @property
    def env(self) -> dict[str, str]:
        return self.server.env

    def read(self, path: str) -> bytes | None:
        """The bytes stored at `path` (relative to the store's top), read without trackgate."""
        if isinstance(self.server, AzuriteServer):
            with self.server.client() as client:
                blob = client.get_blob_client(self.server.container, path)
                return blob.download_blob().readall() if blob.exists() else None
        top = self.server.root
        file = top / path
        return file.read_bytes() if file.is_file() else None


@pytest.fixture(scope="module", params=["ftp", "sftp", "wasbs"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    start = {"ftp": pyftpdlib_server, "sftp": openssh_server, "wasbs": azurite}[request.param]
    with start() as server:
        yield Store(request.param, server)


@contextlib.contextmanager
def tracking_at(url: str) -> Iterator[None]:
    mlflow.set_tracking_uri(url)
    try:
        yield
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri("")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_proxied_to_the_store(store: Store, tmp_path: Path) -> None:
    big = os.urandom(3 * MiB + 17)
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    (src / "nested" / "data.bin").write_bytes(big)
    (src / "top.txt").write_text("top")
    prefix = f"proxied-{uuid.uuid4().hex[:8]}"
    dest = store.uri(prefix)
    with trackgate_server(tmp_path / "srv", "--artifacts-destination", dest, env=store.env) as srv:
        with tracking_at(srv.url):
            mlflow.set_experiment(f"{store.kind}-{uuid.uuid4().hex[:8]}")
            with mlflow.start_run() as run:
                assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
                mlflow.log_artifacts(str(src), artifact_path="tree")
                mlflow.log_text("hello ✓", "notes/hello.txt")
            client = MlflowClient()
            listed = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id, "tree")}
            assert listed == {("tree/nested", True, None), ("tree/top.txt", False, 3)}
            out = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "out")))
            assert sha256((out / "tree/nested/data.bin").read_bytes()) == sha256(big)
            assert (out / "notes/hello.txt").read_text() == "hello ✓"
        r = requests.get(f"{srv.url}{ART}/x/nothing.bin")
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        r = requests.get(f"{srv.url}{ART}/{run.info.experiment_id}/{run.info.run_id}/artifacts/tree/top.txt",
                         headers={"Range": "bytes=1-2"})  # fmt: skip
        assert r.status_code == 206 and r.content == b"op"
    stored = f"{prefix}/{run.info.experiment_id}/{run.info.run_id}/artifacts/tree/nested/data.bin"
    on_store = store.read(stored)
    assert on_store is not None and sha256(on_store) == sha256(big), "the bytes are in the store itself"


def test_no_serve_artifacts_client_writes_to_the_store(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in store.env.items():
        monkeypatch.setenv(name, value)  # the mlflow client's own store library reads them
    prefix = f"direct-{uuid.uuid4().hex[:8]}"
    root = store.uri(prefix)
    with trackgate_server(tmp_path / "srv", "--no-serve-artifacts", "--default-artifact-root", root,
                          env=store.env) as srv:  # fmt: skip
        with tracking_at(srv.url):
            mlflow.set_experiment(f"direct-{store.kind}-{uuid.uuid4().hex[:8]}")
            with mlflow.start_run() as run:
                mlflow.log_text("straight to the store", "d/note.txt")
            assert run.info.artifact_uri.startswith(root)
            assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/d/note.txt") == "straight to the store"
        listing = requests.get(
            f"{srv.url}/api/2.0/mlflow/artifacts/list", params={"run_id": run.info.run_id, "path": "d"}
        )
        assert listing.json()["files"] == [{"path": "d/note.txt", "is_dir": False, "file_size": 21}]
        r = requests.get(f"{srv.url}/get-artifact", params={"run_id": run.info.run_id, "path": "d/note.txt"})
        assert r.status_code == 200 and r.content == b"straight to the store"
        assert requests.get(f"{srv.url}{ART}", params={"path": "x"}).status_code == 503
    relative = run.info.artifact_uri.split(prefix, 1)[1].strip("/")
    assert store.read(f"{prefix}/{relative}/d/note.txt") == b"straight to the store"
