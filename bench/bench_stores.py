"""FTP, SFTP and Azure Blob through `trackgate server`, next to each store's own clients.

    python -m bench.bench_stores [--size-mib 512] [--rounds 3] [--stores ftp,sftp,wasbs]
                                 [--store-dir /dev/shm]

Each store runs on loopback exactly as the tests start it (pyftpdlib, Debian's sshd, Azurite;
tests/artifacts/*_server.py), keeping its files under --store-dir: tmpfs by default, so that
both sides measure the transfer and not this VM's disk writeback (on disk, a direct FTP upload
swung 420-1,600 MB/s between rounds). For each store: `trackgate server --artifacts-destination
<store>`, a PUT and a GET of the file through the artifact proxy with curl (the client is not
what is measured), then the same file copied straight to and from the store by each reference
client, in turn. The first reference of a store is the one the target names, "the store's own
client library copying the same file directly"; the others are kept as stricter or looser rows:

| store | references (the first is the target's) |
| --- | --- |
| local | shutil.copyfile to and from a local --artifacts-destination (the server's own ceiling) |
| ftp | ftplib (Python's own, 1 MiB blocks); aioftp (the library the store uses, 1 MiB blocks); curl (libcurl, C) |
| sftp | asyncssh's get/put at its defaults; asyncssh with trackgate's options (AES-GCM, 8 MiB |
|  | window); OpenSSH's `sftp` (C, AES-128-GCM) |
| wasbs | azure-storage-blob (sync, its defaults: 4 MiB blocks, one connection) |

trackgate's speed is curl's own figure (its connections are warm: the server keeps one SSH
connection, the warm-up made it). A Python reference is timed around the copy alone, its
connection and login made before; `sftp` by the wall time of the copy less the median time of a
session that copies nothing (process start, key exchange, login); curl's FTP by its own figure.
Every copy goes to or from the same page-cached source file or /dev/null.

MB/s are 10^6 bytes/s, median of the rounds; ratio = through trackgate / reference. Memory is
the RSS of the trackgate server's whole process tree sampled every 50 ms during the first round's
transfers; growth = peak - idle before the transfer. Stored bytes are checked against the
source's sha256 after every upload through trackgate, outside the timing. The load average is
printed before and after each store.
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


@dataclass
class Reference:
    """One way of copying the file straight to and from the store, without trackgate. Each
    call returns MB/s; `upload(local, name)` stores under `name` in the bench's prefix."""

    label: str
    upload: Callable[[Path, str], float]
    download: Callable[[str, Path], float]


def timed(fn: Callable[[], object], size: int, overhead: float = 0.0) -> float:
    start = time.perf_counter()
    fn()
    return size / (time.perf_counter() - start - overhead) / 1e6


def local_references(s: LocalDir, prefix: str, size: int) -> list[Reference]:
    folder = s.root / prefix / "direct"

    def up(local: Path, name: str) -> float:
        folder.mkdir(parents=True, exist_ok=True)
        return timed(lambda: shutil.copyfile(local, folder / name), size)

    return [Reference("shutil", up, lambda name, local: timed(lambda: shutil.copyfile(folder / name, local), size))]


def ftp_references(s: object, prefix: str, size: int) -> list[Reference]:
    import asyncio
    import ftplib

    import aioftp

    from tests.artifacts.ftp_server import PASSWORD, USER

    port = s.port  # type: ignore[attr-defined]
    folder = f"/{prefix}/direct"
    (s.root / prefix / "direct").mkdir(parents=True, exist_ok=True)  # type: ignore[attr-defined]

    def ftplib_copy(name: str, copy: Callable[[ftplib.FTP, str], object]) -> float:
        with ftplib.FTP() as ftp:
            ftp.connect("127.0.0.1", port)
            ftp.login(USER, PASSWORD)
            return timed(lambda: copy(ftp, f"{folder}/{name}"), size)

    def ftplib_up(local: Path, name: str) -> float:
        with open(local, "rb") as f:
            return ftplib_copy(name, lambda ftp, path: ftp.storbinary(f"STOR {path}", f, blocksize=MiB))

    def ftplib_down(name: str, local: Path) -> float:
        with open(local, "wb") as f:
            return ftplib_copy(name, lambda ftp, path: ftp.retrbinary(f"RETR {path}", f.write, blocksize=MiB))

    async def aioftp_up(local: Path, name: str) -> float:
        async with aioftp.Client.context("127.0.0.1", port, USER, PASSWORD) as client:
            start = time.perf_counter()
            async with client.upload_stream(f"{folder}/{name}") as stream:
                with open(local, "rb") as f:
                    while block := f.read(MiB):
                        await stream.write(block)
            return size / (time.perf_counter() - start) / 1e6

    async def aioftp_down(name: str, local: Path) -> float:
        async with aioftp.Client.context("127.0.0.1", port, USER, PASSWORD) as client:
            start = time.perf_counter()
            with open(local, "wb") as f:
                async with client.download_stream(f"{folder}/{name}") as stream:
                    async for block in stream.iter_by_block(MiB):
                        f.write(block)
            return size / (time.perf_counter() - start) / 1e6

    def url(name: str) -> str:
        return s.uri(f"{prefix}/direct/{name}")  # type: ignore[attr-defined,no-any-return]

    return [
        Reference("ftplib", ftplib_up, ftplib_down),
        Reference(
            "aioftp",
            lambda local, name: asyncio.run(aioftp_up(local, name)),
            lambda name, local: asyncio.run(aioftp_down(name, local)),
        ),
        Reference(
            "curl",
            lambda local, name: curl(["--ftp-create-dirs", "-T", str(local), "-w", "%{speed_upload}", url(name)]),
            lambda name, local: curl(["-w", "%{speed_download}", url(name)]),
        ),
    ]


def sftp_references(s: object, prefix: str, size: int, work: Path) -> list[Reference]:
    import asyncio

    import asyncssh

    from tracking_core.artifacts.sftp import WINDOW

    ssh = s.home / ".ssh"  # type: ignore[attr-defined]
    folder = f"{s.root}/{prefix}/direct"  # type: ignore[attr-defined]
    (s.root / prefix / "direct").mkdir(parents=True, exist_ok=True)  # type: ignore[attr-defined]

    def via_asyncssh(options: dict[str, object]) -> Reference:
        async def copy(direction: str, local: Path, name: str) -> float:
            async with asyncssh.connect(
                "127.0.0.1", port=s.port, username=s.user, known_hosts=str(ssh / "known_hosts"),  # type: ignore[attr-defined]
                client_keys=[str(ssh / "id_rsa")], agent_path=None, **options,  # type: ignore[arg-type]
            ) as conn, conn.start_sftp_client() as sftp:  # fmt: skip
                start = time.perf_counter()
                if direction == "up":
                    await sftp.put(str(local), f"{folder}/{name}")
                else:
                    await sftp.get(f"{folder}/{name}", str(local))
                return size / (time.perf_counter() - start) / 1e6

        label = "asyncssh, trackgate's options" if options else "asyncssh"
        return Reference(
            label,
            lambda local, name: asyncio.run(copy("up", local, name)),
            lambda name, local: asyncio.run(copy("down", local, name)),
        )

    def openssh(command: str) -> None:
        batch = work / "sftp.batch"
        batch.write_text(f"{command}\n")
        subprocess.run(["sftp", "-q", "-b", str(batch), "-i", str(ssh / "id_rsa"), "-P", str(s.port),  # type: ignore[attr-defined]
                        "-c", ENCRYPTION_PREFERENCE[0],
                        "-o", f"UserKnownHostsFile={ssh / 'known_hosts'}", "-o", "BatchMode=yes",
                        f"{s.user}@127.0.0.1"], check=True, capture_output=True, timeout=3600)  # type: ignore[attr-defined]  # fmt: skip

    sessions = []
    for _ in range(3):
        start = time.perf_counter()
        openssh("pwd")
        sessions.append(time.perf_counter() - start)
    overhead = statistics.median(sessions)
    print(f"sftp: a session that copies nothing takes {overhead:.2f} s", file=sys.stderr)
    return [
        via_asyncssh({}),
        via_asyncssh({"encryption_algs": ENCRYPTION_PREFERENCE, "window": WINDOW}),
        Reference(
            "OpenSSH sftp",
            lambda local, name: timed(lambda: openssh(f"put {local} {folder}/{name}"), size, overhead),
            lambda name, local: timed(lambda: openssh(f"get {folder}/{name} {local}"), size, overhead),
        ),
    ]


def azure_references(s: object, prefix: str, size: int) -> list[Reference]:
    def up(local: Path, name: str) -> float:
        with s.client() as client, open(local, "rb") as f:  # type: ignore[attr-defined]
            blob = client.get_blob_client(s.container, f"{prefix}/direct/{name}")  # type: ignore[attr-defined]
            return timed(lambda: blob.upload_blob(f, overwrite=True), size)

    def down(name: str, local: Path) -> float:
        with s.client() as client, open(local, "wb") as f:  # type: ignore[attr-defined]
            blob = client.get_blob_client(s.container, f"{prefix}/direct/{name}")  # type: ignore[attr-defined]
            return timed(lambda: blob.download_blob().readinto(f), size)

    return [Reference("azure-storage-blob", up, down)]


def references(kind: str, s: object, prefix: str, size: int, work: Path) -> list[Reference]:
    if isinstance(s, LocalDir):
        return local_references(s, prefix, size)
    if kind == "ftp":
        return ftp_references(s, prefix, size)
    if kind == "sftp":
        return sftp_references(s, prefix, size, work)
    return azure_references(s, prefix, size)


def stored_sha256(kind: str, s: object, prefix: str, name: str) -> str:
    if kind in ("local", "ftp", "sftp"):
        return sha256_of(next((s.root / prefix).rglob(name)))  # type: ignore[attr-defined]
    digest = hashlib.sha256()
    with s.client() as client:  # type: ignore[attr-defined]
        container = client.get_container_client(s.container)  # type: ignore[attr-defined]
        blob = next(b.name for b in container.list_blobs(name_starts_with=prefix) if b.name.endswith(name))
        for chunk in container.get_blob_client(blob).download_blob().chunks():
            digest.update(chunk)
    return digest.hexdigest()


def forget(kind: str, s: object, prefix: str) -> None:
    """Remove what the round stored, so that a tmpfs store holds one round at a time."""
    if kind in ("local", "ftp", "sftp"):
        for path in (s.root / prefix).rglob("*.bin"):  # type: ignore[attr-defined]
            path.unlink()


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


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def bench_store(kind: str, work: Path, data: Path, digest: str, rounds: int) -> dict[str, object]:
    size = data.stat().st_size
    prefix = "bench"
    load_before = load()
    with store_server(kind) as s:
        refs = references(kind, s, prefix, size, work)
        via_up: list[float] = []
        via_down: list[float] = []
        own_up: dict[str, list[float]] = {r.label: [] for r in refs}
        own_down: dict[str, list[float]] = {r.label: [] for r in refs}
        memory: dict[str, float] = {}
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
                assert stored_sha256(kind, s, prefix, name) == digest, f"{kind}: stored bytes differ from the source"
                with PeakRss(pid) as down_mem:
                    via_down.append(curl(["-w", "%{speed_download}", target]))
                if i == 0:
                    memory = {"idle_rss_mib": up_mem.idle / MiB, "upload_growth_mib": up_mem.growth_mib,
                              "download_growth_mib": down_mem.growth_mib}  # fmt: skip
                for ref in refs:
                    os.sync()
                    own = f"d{i}.bin"
                    own_up[ref.label].append(ref.upload(data, own))
                    own_down[ref.label].append(ref.download(own, Path(os.devnull)))
                forget(kind, s, prefix)
    result: dict[str, object] = {
        "trackgate_up_mbps": statistics.median(via_up),
        "trackgate_down_mbps": statistics.median(via_down),
        "references": {
            label: {"up_mbps": statistics.median(own_up[label]), "down_mbps": statistics.median(own_down[label])}
            for label in own_up
        },
        "load_before": load_before,
        "load_after": load(),
        **memory,
    }
    print(f"{kind}: {result}", file=sys.stderr, flush=True)
    return result


def table(results: dict[str, dict[str, object]]) -> None:
    print(f"{'store':<6} {'reference':<30} {'up tg':>6} {'up ref':>7} {'ratio':>6} {'down tg':>8} "
          f"{'down ref':>9} {'ratio':>6} {'idle MiB':>9} {'+up MiB':>8} {'+down MiB':>10}  load")  # fmt: skip
    for kind, r in results.items():
        up, down = r["trackgate_up_mbps"], r["trackgate_down_mbps"]
        for n, (label, ref) in enumerate(r["references"].items()):  # type: ignore[attr-defined]
            memory = (f"{r['idle_rss_mib']:>9.0f} {r['upload_growth_mib']:>8.0f} {r['download_growth_mib']:>10.0f}  "
                      f"{r['load_before']} / {r['load_after']}") if n == 0 else ""  # fmt: skip
            print(f"{kind if n == 0 else '':<6} {label:<30} {up:>6.0f} {ref['up_mbps']:>7.0f} "
                  f"{up / ref['up_mbps']:>6.2f} {down:>8.0f} {ref['down_mbps']:>9.0f} "
                  f"{down / ref['down_mbps']:>6.2f} {memory}")  # type: ignore[operator]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--store-dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the stores (and the source file) keep their files; default tmpfs")  # fmt: skip
    args = parser.parse_args()
    # The stores' servers make their directories with tempfile, as in the tests.
    tempfile.tempdir = args.store_dir
    results = {}
    with tempfile.TemporaryDirectory(prefix="tg-bench-stores-") as tmp:
        work = Path(tmp)
        data = work / "data.bin"
        digest = make_file(data, args.size_mib * MiB)
        for kind in args.stores.split(","):
            (work / kind).mkdir()
            results[kind] = bench_store(kind, work / kind, data, digest, args.rounds)
    print(f"\n{args.size_mib} MiB in {args.store_dir or 'the default temporary directory'}, median of "
          f"{args.rounds}; MB/s through trackgate vs each reference client")  # fmt: skip
    table(results)


if __name__ == "__main__":
    main()
