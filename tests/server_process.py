"""Start `trackgate server` as a real subprocess on a free loopback port, as a user would."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.services import free_port


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"trackgate server exited with {process.returncode} before becoming ready")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"trackgate server at {url} not ready after {timeout} s")


@contextlib.contextmanager
def trackgate_server(
    workdir: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True, port: int | None = None
) -> Iterator[RunningServer]:
    """A server with its own SQLite database and artifact directory under `workdir`; on `port`
    when given (an identity provider needs the callback URL before the server starts)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [sys.executable, "-m", "gateway.cli", "server", "--host", "127.0.0.1", "--port", str(port)]
    if "--backend-store-uri" not in args and "--artifacts-only" not in args:
        argv += ["--backend-store-uri", f"sqlite:///{workdir}/trackgate.db"]
    if "--artifacts-destination" not in args:
        argv += ["--artifacts-destination", str(workdir / "artifacts")]
    argv += list(args)
    log_path = workdir / f"server-{port}.log"
    # The server rejects unknown TRACKGATE_* variables, and the test runner's own are not its settings.
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKGATE_")}
    full_env.update(env or {})
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=workdir)
    server = RunningServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        if wait:
            try:
                wait_ready(server.url, process)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n--- server log ---\n{server.log()}") from None
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
