"""A throwaway PostgreSQL primary and a streaming standby made from it with pg_basebackup, on free
loopback ports (shared/TESTING_PARTS.md §5), for read-replica tests. Both stop afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.services import free_port, missing

PGBIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class ReplicaPair:
    primary: str  # postgresql://postgres@127.0.0.1:P/postgres
    standby: str
    standby_port: int

    def standby_sql(self, sql: str) -> str:
        return _psql(self.standby_port, sql)


def _as_postgres(*argv: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120)


def _psql(port: int, sql: str) -> str:
    out = subprocess.run([str(PGBIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-Atc", sql],
                         check=True, capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


@contextlib.contextmanager
def primary_and_standby() -> Iterator[ReplicaPair]:
    if not (PGBIN / "initdb").exists() or shutil.which("runuser") is None or os.geteuid() != 0:
        missing(f"PostgreSQL binaries in {PGBIN} and root (to run them as the postgres user)")
    root = Path(tempfile.mkdtemp(prefix="tg-pgrep-", dir="/tmp"))
    shutil.chown(root, "postgres")
    primary_dir, standby_dir = root / "primary", root / "standby"
    ports = free_port(), free_port()
    started: list[Path] = []
    try:
        _as_postgres(str(PGBIN / "initdb"), "-D", str(primary_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                     "--locale=C.UTF-8", "--no-sync")
        with open(primary_dir / "pg_hba.conf", "a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        for data, port in ((primary_dir, ports[0]),):
            _start(data, port, root)
            started.append(data)
        _as_postgres(str(PGBIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(ports[0]), "-U", "postgres",
                     "-D", str(standby_dir), "-R", "-X", "stream", "--no-sync")
        _start(standby_dir, ports[1], root)
        started.append(standby_dir)
        assert _psql(ports[1], "SELECT pg_is_in_recovery()") == "t"
        yield ReplicaPair(f"postgresql://postgres@127.0.0.1:{ports[0]}/postgres",
                          f"postgresql://postgres@127.0.0.1:{ports[1]}/postgres", ports[1])
    finally:
        for data in reversed(started):
            with contextlib.suppress(subprocess.CalledProcessError):
                _as_postgres(str(PGBIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _start(data: Path, port: int, root: Path) -> None:
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c hot_standby=on"
    _as_postgres(str(PGBIN / "pg_ctl"), "-D", str(data), "-l", str(data) + ".log", "-w", "-o", options, "start")
