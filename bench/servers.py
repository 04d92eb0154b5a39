"""Start, probe, measure and stop the servers under test.

Each server is a subprocess in its own session (process group), with its own fresh SQLite file and
artifact directory under a temp dir. Stopping it signals that group only: the processes we started.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class ServerSpec:
    """How to start one kind of server. `name` is the column label in the report."""

    name: str
    kind: str  # "trackgate" | "mlflow"
    ready_path: str
    extra_args: tuple[str, ...] = ()
    skip: frozenset[str] = frozenset()  # scenarios left out by default (see bench/README.md)
    backend_uri: str | None = None  # default: a fresh SQLite file in the server's work dir

    def command(self, port: int, workdir: Path) -> list[str]:
        if self.kind == "trackgate":
            return [
                sys.executable,
                "-m",
                "gateway.cli",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                self.backend_uri or f"sqlite:///{workdir}/tg.db",
                "--artifacts-destination",
                f"{workdir}/tg-art",
                *self.extra_args,
            ]
        if self.kind == "mlflow":
            mlflow = Path(sys.executable).with_name("mlflow")
            launcher = [str(mlflow)] if mlflow.exists() else [sys.executable, "-m", "mlflow"]
            return [
                *launcher,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                self.backend_uri or f"sqlite:///{workdir}/mlflow.db",
                "--artifacts-destination",
                f"{workdir}/ml-art",
                *self.extra_args,
            ]
        raise ValueError(f"unknown server kind {self.kind!r}")


TRACKGATE = ServerSpec("trackgate", "trackgate", "/readyz")
MLFLOW = ServerSpec("mlflow", "mlflow", "/health")
# A second reference row: the default's 4 uvicorn workers lose ~40 ms per sequential keep-alive request.
# It skips the 5,000-run search, whose populating alone takes it several minutes.
MLFLOW_W1 = ServerSpec("mlflow-w1", "mlflow", "/health", ("--workers", "1"), skip=frozenset({"search"}))


class ServerFailed(RuntimeError):
    pass


class ServerProcess:
    """One running server: `await start()`, use `.base_url`, `stop()`."""

    def __init__(
        self, spec: ServerSpec, workdir: Path, ready_timeout: float = 180.0, source_dir: Path | None = None
    ):
        """`source_dir`: where trackgate's code is run from (default: this checkout)."""
        self.spec = spec
        self.source_dir = source_dir or REPO_ROOT
        self.workdir = workdir
        self.ready_timeout = ready_timeout
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_seconds: float | None = None
        self.log_path = workdir / "server.log"

    async def start(self) -> float:
        """Start the process; return seconds from spawn until the readiness probe answers 200."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        env.setdefault("DO_NOT_TRACK", "true")
        env["PYTHONUNBUFFERED"] = "1"
        if self.spec.kind == "trackgate" and self.source_dir != REPO_ROOT:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.source_dir), env.get("PYTHONPATH")]))
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child, closed in stop()
        self._log = log
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            self.spec.command(self.port, self.workdir),
            cwd=self.source_dir if self.spec.kind == "trackgate" else self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = self.base_url + self.spec.ready_path
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if self.proc.poll() is not None:
                    raise ServerFailed(
                        f"{self.spec.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                    )
                elapsed = time.perf_counter() - started
                if elapsed > self.ready_timeout:
                    self.stop()
                    raise ServerFailed(
                        f"{self.spec.name} not ready after {elapsed:.0f} s:\n{self.log_tail()}"
                    )
                try:
                    async with session.get(url) as resp:
                        await resp.read()
                        if resp.status == 200:
                            self.ready_seconds = time.perf_counter() - started
                            return self.ready_seconds
                except (TimeoutError, aiohttp.ClientError, OSError):
                    pass
                await asyncio.sleep(0.02)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> list[int]:
        """The server process and all its descendants."""
        if self.proc is None:
            return []
        return process_tree(self.proc.pid)

    def memory(self) -> dict[str, float]:
        """PSS and RSS summed over the process tree, in MB, and the process count."""
        pids = self.pids()
        pss = rss = 0
        for pid in pids:
            fields = smaps_rollup(pid)
            pss += fields.get("Pss", 0)
            rss += fields.get("Rss", 0)
        return {"pss_mb": pss / 1024, "rss_mb": rss / 1024, "processes": len(pids)}

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process tree so far (live processes only)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids():
            try:
                parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(parts[11]) + int(parts[12])
            except (OSError, IndexError, ValueError):
                pass
        return total / tick

    def stop(self, grace: float = 15.0) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
        # Whatever is left of the group (workers that ignored SIGTERM, or the leader itself).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        self._log.close()
        self.proc = None


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if not Path(f"/proc/{pid}").exists():
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def smaps_rollup(pid: int) -> dict[str, int]:
    """kB figures from /proc/<pid>/smaps_rollup (empty if the process is gone)."""
    fields: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return fields
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[key.strip()] = int(parts[0])
    return fields


def system_cpu() -> tuple[float, float]:
    """(busy, total) CPU-seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / tick, total / tick


def own_cpu() -> float:
    """CPU-seconds used by this (load-generating) process."""
    t = os.times()
    return t.user + t.system
