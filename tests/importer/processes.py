"""The two real processes import tests drive: `trackgate import-mlflow` and `mlflow server`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from tests.server_process import stop
from tests.services import free_port

MLFLOW_START_TIMEOUT = 300.0  # `mlflow server` imports a lot: 30 s to minutes on a busy 2-core machine


def import_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TRACKGATE_")}


def import_argv(source: str, target: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", "import-mlflow", "--from", source, "--to", target, *extra]


def run_import(source: str, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`trackgate import-mlflow` as a user runs it (no terminal, so no progress bar)."""
    return subprocess.run(
        import_argv(source, target, *extra), capture_output=True, text=True, env=import_env(), timeout=600
    )


class MlflowServer:
    """A started `mlflow server`; `url()` waits until it answers (its start takes long, so callers
    start it first and do their other work meanwhile)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process, self.log_path = process, log_path
        self.base = f"http://127.0.0.1:{port}"
        self._ready = False

    def url(self) -> str:
        deadline = time.monotonic() + MLFLOW_START_TIMEOUT
        while not self._ready:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{self.log_path.read_text(errors='replace')}")
            with contextlib.suppress(requests.RequestException):
                self._ready = requests.get(self.base + "/version", timeout=2).status_code == 200
            if not self._ready and time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not ready:\n{self.log_path.read_text(errors='replace')}")
            time.sleep(0.2)
        return self.base


@contextlib.contextmanager
def mlflow_server(backend_store_uri: str, workdir: Path) -> Iterator[MlflowServer]:
    """`mlflow server` on the import's source: what the client reads there is the expectation."""
    port = free_port()
    log_path = workdir / f"mlflow-server-{port}.log"
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        backend_store_uri,
        "--workers",
        "1",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=import_env())
    try:
        yield MlflowServer(process, port, log_path)
    finally:
        stop(process)
