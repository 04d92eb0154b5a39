"""Helpers for the gateway tests: ports, the stand-in core's command line, and `trackgate server`
subprocesses with their output collected line by line."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from gateway.config import Config
from tests.services import free_port

REPO = Path(__file__).resolve().parents[2]
FAKE_CORE = [sys.executable, str(Path(__file__).with_name("fake_core.py"))]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def core_pids(server_pid: int) -> list[int]:
    """The core workers: children of the server process (not its extra gateway processes)."""
    with open(f"/proc/{server_pid}/task/{server_pid}/children") as f:
        children = [int(p) for p in f.read().split()]
    return [pid for pid in children if b"gateway_worker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]


async def no_schema(config: Config) -> None:
    """The stand-in core has no database, so there is no schema to prepare."""


def server_env(**extra: str) -> dict[str, str]:
    # TRACKGATE_* variables of the test run (e.g. TRACKGATE_REQUIRE_SERVICES) are not settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKGATE_", "MLFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`python -m gateway.cli ARGS` from the repository, with none of the test run's settings."""
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO, env=server_env(), timeout=120)


class ServerProcess:
    """`python -m gateway.cli server ...` on a free port, its output collected line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "server", "--port", str(self.port), *args],
            cwd=REPO,
            env=env or server_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_output(self, text: str, timeout: float = 60) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: text in self.output, timeout)

    def get(self, path: str, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited early:\n{self.output}"
            with contextlib.suppress(OSError):
                if self.get("/readyz", timeout=5)[0] == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.output}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
