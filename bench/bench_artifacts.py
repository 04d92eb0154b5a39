"""Artifact throughput and server memory: `trackgate server` next to `mlflow server`, one run.

    python -m bench.bench_artifacts [--size-mib 512] [--memory-size-mib 2048] [--rounds 3]

Both servers run on this machine with SQLite and a local --artifacts-destination. Transfers use
curl (C, streaming from/to disk), so the client is not what is measured. For each server and
round: one PUT of the file through the artifact proxy, one GET of it; MB/s is curl's average.
Memory is the RSS of the server's whole process tree (gateway, core workers, uvicorn workers),
sampled every 50 ms during a transfer of a --memory-size-mib file; growth = peak - idle.
Stored bytes are checked against the source's sha256 after every upload, outside the timing.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ART = "/api/2.0/mlflow-artifacts/artifacts"
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss(pid: int) -> int:
    """RSS in bytes of `pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


@contextlib.contextmanager
def server(kind: str, workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    if kind == "trackgate":
        argv = [sys.executable, "-m", "gateway.cli", "server"]
        ready = "/readyz"
    else:
        mlflow = Path(sys.executable).with_name("mlflow")
        argv = [
            str(mlflow) if mlflow.exists() else sys.executable,
            *([] if mlflow.exists() else ["-m", "mlflow"]),
        ]
        argv += ["server"]
        ready = "/health"
    argv += ["--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", f"sqlite:///{workdir}/db.sqlite",
             "--artifacts-destination", str(workdir / "artifacts")]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start; see {workdir / 'server.log'}")
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(url + ready, timeout=2).status == 200:
                    break
            time.sleep(0.05)
        yield url, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def curl(args: list[str]) -> float:
    """Run one curl transfer; return its average speed in MB/s (10^6 bytes)."""
    base = ["curl", "-sS", "--fail", "--http1.1", "-H", "Expect:", "-o", "/dev/null"]
    out = subprocess.run(base + args, capture_output=True, text=True, check=True, timeout=3600)
    return float(out.stdout.strip()) / 1e6


def upload(url: str, path: Path, name: str) -> float:
    return curl(["-T", str(path), "-w", "%{speed_upload}", f"{url}{ART}/bench/{name}"])


def download(url: str, name: str) -> float:
    return curl(["-w", "%{speed_download}", f"{url}{ART}/bench/{name}"])


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(4 * MiB)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            piece = block[: min(len(block), size - written)]
            # Vary every block so nothing in the path can deduplicate or compress it.
            piece = hashlib.sha256(written.to_bytes(8, "big")).digest() + piece[32:]
            f.write(piece)
            digest.update(piece)
            written += len(piece)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


class PeakRss:
    """Samples the tree's RSS every 50 ms in a thread while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def __enter__(self) -> PeakRss:
        self.idle = tree_rss(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return max(0, self.peak - self.idle) / MiB


def transfer_rounds(
    kind: str, url: str, workdir: Path, data: Path, digest: str, i: int
) -> tuple[float, float]:
    """One timed upload and download. The disk here writes ~150 MB/s behind a page cache that
    takes ~900 MB/s, so dirty pages are flushed first: every round starts from the same state."""
    os.sync()
    up = upload(url, data, f"f{i}.bin")
    stored = next((workdir / "artifacts").rglob(f"f{i}.bin"))
    assert sha256_of(stored) == digest, f"{kind}: stored bytes differ from the source"
    os.sync()
    down = download(url, f"f{i}.bin")
    stored.unlink()
    return up, down


def memory(kind: str, url: str, pid: int, workdir: Path, big: Path, big_digest: str) -> dict[str, float]:
    os.sync()
    with PeakRss(pid) as up_mem:
        upload(url, big, "big.bin")
    stored = next((workdir / "artifacts").rglob("big.bin"))
    assert sha256_of(stored) == big_digest, f"{kind}: stored big file differs from the source"
    with PeakRss(pid) as down_mem:
        download(url, "big.bin")
    stored.unlink()
    return {
        "idle_rss_mib": up_mem.idle / MiB,
        "upload_growth_mib": up_mem.growth_mib,
        "download_growth_mib": down_mem.growth_mib,
        "peak_rss_mib": max(up_mem.peak, down_mem.peak) / MiB,
    }


def measure(kinds: list[str], work: Path, data: Path, digest: str, rounds: int, big: Path, big_digest: str
            ) -> dict[str, dict[str, float]]:  # fmt: skip
    """All servers up side by side; rounds interleaved so drift on the machine hits each alike."""
    speeds: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    results: dict[str, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        running = {}
        for kind in kinds:
            (work / kind).mkdir()
            running[kind] = stack.enter_context(server(kind, work / kind))
        for i in range(rounds):
            for kind in kinds:
                speeds[kind].append(transfer_rounds(kind, running[kind][0], work / kind, data, digest, i))
        for kind in kinds:
            url, proc = running[kind]
            results[kind] = {
                "upload_mbps": statistics.median(u for u, _ in speeds[kind]),
                "download_mbps": statistics.median(d for _, d in speeds[kind]),
                **memory(kind, url, proc.pid, work / kind, big, big_digest),
            }
            print(f"{kind}: {results[kind]}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--memory-size-mib", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default="trackgate,mlflow")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tg-bench-art-") as tmp:
        work = Path(tmp)
        data, big = work / "data.bin", work / "big.bin"
        digest = make_file(data, args.size_mib * MiB)
        big_digest = make_file(big, args.memory_size_mib * MiB)
        results = measure(args.servers.split(","), work, data, digest, args.rounds, big, big_digest)
    print(f"\n{args.size_mib} MiB transfers, median of {args.rounds}; "
          f"memory while moving {args.memory_size_mib} MiB")  # fmt: skip
    print(f"{'server':<10} {'up MB/s':>9} {'down MB/s':>10} {'idle MiB':>9} {'+up MiB':>8} {'+down MiB':>10}")
    for kind, r in results.items():
        print(f"{kind:<10} {r['upload_mbps']:>9.0f} {r['download_mbps']:>10.0f} {r['idle_rss_mib']:>9.0f} "
              f"{r['upload_growth_mib']:>8.0f} {r['download_growth_mib']:>10.0f}")  # fmt: skip
    if "trackgate" in results and "mlflow" in results:
        t, m = results["trackgate"], results["mlflow"]
        print(f"\nratio trackgate/mlflow: upload {t['upload_mbps'] / m['upload_mbps']:.2f}x, "
              f"download {t['download_mbps'] / m['download_mbps']:.2f}x, peak RSS "
              f"{t['peak_rss_mib'] / m['peak_rss_mib']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
