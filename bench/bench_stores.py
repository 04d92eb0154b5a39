"""FTP, SFTP and Azure Blob through `trackgate server`, next to each store's own client.

    python -m bench.bench_stores [--size-mib 512] [--rounds 3] [--stores ftp,sftp,wasbs]

Each store runs on loopback exactly as the tests start it (pyftpdlib, Debian's sshd, Azurite;
tests/artifacts/*_server.py). For each store: `trackgate server --artifacts-destination <store>`,
a PUT and a GET of the file through the artifact proxy with curl (the client is not what is
measured), then the same file copied straight to and from the store by the store's own client:

| store | direct client |
| --- | --- |
| local | a local --artifacts-destination, copied with shutil (the reference: what the server's own path costs) |
| ftp | curl's FTP client (libcurl, C), passive mode |
| sftp | OpenSSH's `sftp` (C), with trackgate's cipher, AES-128-GCM (its default, ChaCha20, is ~2x slower here) |
| wasbs | azure-storage-blob (sync, its defaults: 4 MiB blocks, one connection) |

Both directions are timed the same way for each side: trackgate by curl's own speed figure (its
connections are warm: the server keeps one SSH connection, the warm-up made it), curl's FTP the
same; `sftp` and the Azure SDK by the wall time of the copy, less, for `sftp`, the median time of
a session that copies nothing (process start, key exchange, login: ~0.1-0.3 s, which would
otherwise count against the direct client). Every direct copy goes to or from the same page-cached
source file or /dev/null as the copies through trackgate.

MB/s are 10^6 bytes/s, median of the rounds; ratio = through trackgate / direct. Memory is the RSS
of the trackgate server's whole process tree sampled every 50 ms during the first round's
transfers; growth = peak - idle before the transfer. Stored bytes are checked against the
source's sha256 after every upload through trackgate, outside the timing.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_artifacts import ART, ROOT, MiB, PeakRss, curl, free_port, make_file, sha256_of
from tracking_core.artifacts.sftp import ENCRYPTION_PREFERENCE

STORES = ("local", "ftp", "sftp", "wasbs")


@dataclass
class LocalDir:
    """The reference row: a local --artifacts-destination, the ceiling of the server's own path."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    def uri(self, path: str) -> str:
        return str(self.root / path)


@contextlib.contextmanager
def trackgate(destination: str, env: dict[str, str], workdir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    argv = [sys.executable, "-m", "gateway.cli", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{workdir}/db.sqlite",
            "--artifacts-destination", destination]  # fmt: skip
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKGATE_")} | env
    with open(workdir / "server.log", "wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"trackgate did not start; see {workdir / 'server.log'}")
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(url + "/readyz", timeout=2).status == 200:
                    break
            time.sleep(0.05)
        yield url, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def timed(fn: Callable[[], object], size: int, overhead: float = 0.0) -> float:
    start = time.perf_counter()
    fn()
    return size / (time.perf_counter() - start - overhead) / 1e6


class Direct:
    """The store's own client: upload(local, name) and download(name, local), plus where the
    bytes stored under `name` can be read back for the checksum."""

    def __init__(self, kind: str, server: object, prefix: str, work: Path) -> None:
        self.kind, self.server, self.prefix, self.work = kind, server, prefix, work

    def upload(self, local: Path, name: str) -> None:
        s = self.server
        if isinstance(s, LocalDir):
            (s.root / self.prefix / "direct").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, s.root / self.prefix / "direct" / name)
        elif self.kind == "ftp":
            curl(["--ftp-create-dirs", "-T", str(local), "-w", "%{speed_upload}", self._ftp_url(name)])
        elif self.kind == "sftp":
            self._sftp(f"put {local} {s.root}/{self.prefix}/{name}")  # type: ignore[attr-defined]
        else:
            with s.client() as client, open(local, "rb") as f:  # type: ignore[attr-defined]
                client.get_blob_client(s.container, f"{self.prefix}/{name}").upload_blob(f, overwrite=True)  # type: ignore[attr-defined]

    def download(self, name: str, local: Path) -> None:
        s = self.server
        if isinstance(s, LocalDir):
            shutil.copyfile(s.root / self.prefix / "direct" / name, local)
        elif self.kind == "ftp":
            curl(["-w", "%{speed_download}", self._ftp_url(name)])
        elif self.kind == "sftp":
            self._sftp(f"get {s.root}/{self.prefix}/{name} {local}")  # type: ignore[attr-defined]
        else:
            with s.client() as client, open(local, "wb") as f:  # type: ignore[attr-defined]
                client.get_blob_client(s.container, f"{self.prefix}/{name}").download_blob().readinto(f)  # type: ignore[attr-defined]

    def session_overhead(self) -> float:
        """Seconds of a direct session that moves no data (only `sftp` runs a process per copy)."""
        if self.kind != "sftp":
            return 0.0
        times = []
        for _ in range(3):
            start = time.perf_counter()
            self._sftp("pwd")
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def stored_sha256(self, name: str) -> str:
        s = self.server
        if self.kind in ("local", "ftp", "sftp"):
            return sha256_of(next((s.root / self.prefix).rglob(name)))  # type: ignore[attr-defined]
        digest = hashlib.sha256()
        with s.client() as client:  # type: ignore[attr-defined]
            container = client.get_container_client(s.container)  # type: ignore[attr-defined]
            blob = next(b.name for b in container.list_blobs(name_starts_with=self.prefix) if b.name.endswith(name))
            for chunk in container.get_blob_client(blob).download_blob().chunks():
                digest.update(chunk)
        return digest.hexdigest()

    def _ftp_url(self, name: str) -> str:
        return self.server.uri(f"{self.prefix}/direct/{name}")  # type: ignore[attr-defined]

    def _sftp(self, command: str) -> None:
        s = self.server
        ssh = s.home / ".ssh"  # type: ignore[attr-defined]
        batch = self.work / "sftp.batch"
        batch.write_text(f"-mkdir {s.root}/{self.prefix}\n{command}\n")  # type: ignore[attr-defined]
        subprocess.run(["sftp", "-q", "-b", str(batch), "-i", str(ssh / "id_rsa"), "-P", str(s.port),  # type: ignore[attr-defined]
                        "-c", ENCRYPTION_PREFERENCE[0],
                        "-o", f"UserKnownHostsFile={ssh / 'known_hosts'}", "-o", "BatchMode=yes",
                        f"{s.user}@127.0.0.1"], check=True, capture_output=True, timeout=3600)  # type: ignore[attr-defined]  # fmt: skip


@contextlib.contextmanager
def store_server(kind: str) -> Iterator[object]:
    from tests.artifacts.azurite_server import azurite
    from tests.artifacts.ftp_server import pyftpdlib_server
    from tests.artifacts.sshd_server import openssh_server

    if kind == "local":
        with tempfile.TemporaryDirectory(prefix="tg-bench-local-") as tmp:
            yield LocalDir(Path(tmp))
        return
    start = {"ftp": pyftpdlib_server, "sftp": openssh_server, "wasbs": azurite}[kind]
    with start() as server:  # type: ignore[operator]
        yield server


def bench_store(kind: str, work: Path, data: Path, digest: str, rounds: int) -> dict[str, float]:
    size = data.stat().st_size
    with store_server(kind) as s:
        prefix = "bench"
        direct = Direct(kind, s, prefix, work)
        via_up: list[float] = []
        via_down: list[float] = []
        own_up: list[float] = []
        own_down: list[float] = []
        memory: dict[str, float] = {}
        overhead = direct.session_overhead()
        with trackgate(s.uri(prefix), s.env, work) as (url, pid):  # type: ignore[attr-defined]
            # Untimed warm-up: the store's client library is imported and connected on first use.
            curl(["-T", __file__, "-w", "%{speed_upload}", f"{url}{ART}/warm-up.py"])
            curl(["-w", "%{speed_download}", f"{url}{ART}/warm-up.py"])
            for i in range(rounds):
                name = f"f{i}.bin"
                target = f"{url}{ART}/proxied/{name}"
                os.sync()
                with PeakRss(pid) as up_mem:
                    via_up.append(curl(["-T", str(data), "-w", "%{speed_upload}", target]))
                assert direct.stored_sha256(name) == digest, f"{kind}: stored bytes differ from the source"
                with PeakRss(pid) as down_mem:
                    via_down.append(curl(["-w", "%{speed_download}", target]))
                if i == 0:
                    memory = {"idle_rss_mib": up_mem.idle / MiB, "upload_growth_mib": up_mem.growth_mib,
                              "download_growth_mib": down_mem.growth_mib}  # fmt: skip
                os.sync()
                own = f"d{i}.bin"
                own_up.append(timed(lambda: direct.upload(data, own), size, overhead))  # noqa: B023 - called at once
                own_down.append(timed(lambda: direct.download(own, Path(os.devnull)), size, overhead))  # noqa: B023
    result = {
        "direct_session_overhead_s": overhead,
        "trackgate_up_mbps": statistics.median(via_up),
        "trackgate_down_mbps": statistics.median(via_down),
        "direct_up_mbps": statistics.median(own_up),
        "direct_down_mbps": statistics.median(own_down),
        **memory,
    }
    print(f"{kind}: {result}", file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", default=",".join(STORES))
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="tg-bench-stores-") as tmp:
        work = Path(tmp)
        data = work / "data.bin"
        digest = make_file(data, args.size_mib * MiB)
        for kind in args.stores.split(","):
            (work / kind).mkdir()
            results[kind] = bench_store(kind, work / kind, data, digest, args.rounds)
    print(f"\n{args.size_mib} MiB, median of {args.rounds}; MB/s through trackgate vs the store's own client")
    print(f"{'store':<6} {'up tg':>7} {'up own':>7} {'ratio':>6} {'down tg':>8} {'down own':>9} {'ratio':>6} "
          f"{'idle MiB':>9} {'+up MiB':>8} {'+down MiB':>10}")  # fmt: skip
    for kind, r in results.items():
        print(f"{kind:<6} {r['trackgate_up_mbps']:>7.0f} {r['direct_up_mbps']:>7.0f} "
              f"{r['trackgate_up_mbps'] / r['direct_up_mbps']:>6.2f} {r['trackgate_down_mbps']:>8.0f} "
              f"{r['direct_down_mbps']:>9.0f} {r['trackgate_down_mbps'] / r['direct_down_mbps']:>6.2f} "
              f"{r['idle_rss_mib']:>9.0f} {r['upload_growth_mib']:>8.0f} "
              f"{r['download_growth_mib']:>10.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
