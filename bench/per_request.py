"""CPU per request of each server process (and of PostgreSQL), and statements per request.

    python -m bench.per_request                                   # SQLite, trackgate vs mlflow
    python -m bench.per_request --backend postgresql --servers trackgate,mlflow-w1

For each server (started alone, on its own fresh database) it sends a fixed number of `log_metric`
and `runs/create` requests from 16 keep-alive clients and reports, per request: the CPU time of
each kind of server process (trackgate: gateway, core; mlflow: its processes), summed from
/proc/<pid>/stat over exactly that window, and req/s. On PostgreSQL it also counts the statements
the server sent per request (`log_statement = all` on the throwaway database, counted in the
server log during a first, short pass) and the CPU of the PostgreSQL backends serving it.

`mlflow server` on PostgreSQL needs a synchronous driver: `pip install 'psycopg[binary]'` (SQLAlchemy
2.1's default for postgresql://); trackgate itself uses asyncpg.

CPU per request is the figure a shared machine disturbs least; req/s moves with the neighbours.
Run it under `flock /tmp/trackgate-cpu.lock`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.client import Client, now_ms, with_clients
from bench.servers import MLFLOW, MLFLOW_W1, TRACKGATE, ServerProcess, ServerSpec

SPECS = {s.name: s for s in (TRACKGATE, MLFLOW, MLFLOW_W1)}
PG_ADMIN = os.environ.get("TRACKGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_LOG = Path(os.environ.get("BENCH_PG_LOG", "/var/log/postgresql/postgresql-15-main.log"))
TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def label(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    text = " ".join(a.decode(errors="replace") for a in argv)
    if "tracking_core.worker" in text:
        return "core"
    if "gateway.cli" in text or "gateway.gateway_worker" in text:
        return "gateway"
    if "uvicorn" in text or "gunicorn" in text:
        return "mlflow-web"
    if "huey" in text or "job" in text:
        return "mlflow-jobs"
    return Path(argv[0].decode(errors="replace")).name or "other"


def psql(sql: str, db: str = "postgres") -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    out = subprocess.run(["psql", f"{base}/{db}", "-Atqc", sql], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def pg_backend_pids(db: str) -> list[int]:
    out = psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()")
    return [int(x) for x in out.split()]


@dataclasses.dataclass
class Window:
    """CPU seconds per process label (and PostgreSQL backends) over one measured window."""

    server: ServerProcess
    db: str | None
    before: dict[int, float] = dataclasses.field(default_factory=dict)
    labels: dict[int, str] = dataclasses.field(default_factory=dict)

    def _pids(self) -> dict[int, str]:
        pids = {pid: label(pid) for pid in self.server.pids()}
        if self.db:
            pids.update({pid: "postgres" for pid in pg_backend_pids(self.db)})
        return pids

    sessions: int = 0

    def _sessions(self) -> int:
        return int(psql(f"SELECT sessions FROM pg_stat_database WHERE datname = '{self.db}'")) if self.db else 0

    def start(self) -> None:
        self.labels = self._pids()
        self.before = {pid: proc_cpu(pid) for pid in self.labels}
        self.sessions = self._sessions()

    def stop(self) -> dict[str, float]:
        self.labels.update(self._pids())  # backends opened during the window count from zero
        spent: dict[str, float] = {}
        for pid, name in self.labels.items():
            spent[name] = spent.get(name, 0.0) + proc_cpu(pid) - self.before.get(pid, 0.0)
        self.sessions = self._sessions() - self.sessions
        return spent


async def prepare(base_url: str, clients: int) -> tuple[str, list[str]]:
    async with Client(base_url) as admin:
        exp = await admin.create_experiment(f"perreq-{time.time_ns()}")
        runs = [(await admin.create_run(exp, f"r{c}"))[0]["run_id"] for c in range(clients)]
    return exp, runs


async def log_metrics(base_url: str, runs: list[str], per_client: int, first_step: int) -> float:
    ts = now_ms()

    async def work(c: int, client: Client) -> None:
        for s in range(first_step, first_step + per_client):
            await client.log_metric(runs[c], "loss", s * 0.5, s, ts + s)

    started = time.perf_counter()
    await with_clients(base_url, len(runs), work)
    return time.perf_counter() - started


async def create_runs(base_url: str, exp: str, clients: int, per_client: int) -> float:
    async def work(c: int, client: Client) -> None:
        for i in range(per_client):
            await client.create_run(exp, f"c{c}-{i}-{time.time_ns()}")

    started = time.perf_counter()
    await with_clients(base_url, clients, work)
    return time.perf_counter() - started


def count_statements(offset: int, db: str) -> int:
    """Statements logged for `db` since `offset` (the default log_line_prefix names user@database)."""
    with PG_LOG.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return sum(
        1 for line in text.splitlines()
        if f"@{db} " in line and ("LOG:  statement:" in line or "LOG:  execute" in line)
    )


async def measure(
    spec: ServerSpec, backend: str, requests: int, clients: int, source: Path | None = None
) -> dict[str, Any]:
    per_client = max(1, requests // clients)
    total = per_client * clients
    db = None
    if backend == "postgresql":
        db = f"bench_{spec.name.replace('-', '_')}_{secrets.token_hex(3)}"
        psql(f'CREATE DATABASE "{db}"')
        psql(f'ALTER DATABASE "{db}" SET log_statement = \'all\'')
        spec = dataclasses.replace(spec, backend_uri=PG_ADMIN.rsplit("/", 1)[0] + "/" + db)
    out: dict[str, Any] = {"server": spec.name}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(spec, Path(tmp) / spec.name, source_dir=source if spec.kind == "trackgate" else None)
        try:
            out["ready_s"] = await server.start()
            exp, runs = await prepare(server.base_url, clients)
            await log_metrics(server.base_url, runs, 20, 0)  # warm-up: imports, pools, statement caches
            await create_runs(server.base_url, exp, clients, 2)
            if db:
                # Statements per request, counted in a short logged pass; then logging off (new
                # sessions: end the current ones; both servers' pools replace closed connections).
                for name, op in (("log_metric", lambda n: log_metrics(server.base_url, runs, n, 10_000)),
                                 ("create_run", lambda n: create_runs(server.base_url, exp, clients, n))):
                    await asyncio.sleep(0.5)  # the previous pass's lines reach the log first
                    offset = PG_LOG.stat().st_size
                    await op(5)
                    await asyncio.sleep(0.5)
                    out[f"{name}_statements"] = count_statements(offset, db) / (5 * clients)
                psql(f'ALTER DATABASE "{db}" RESET log_statement')
                psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'")
                await asyncio.sleep(0.5)
                await log_metrics(server.base_url, runs, 5, 20_000)
            for name, op in (("log_metric", lambda: log_metrics(server.base_url, runs, per_client, 100_000)),
                             ("create_run", lambda: create_runs(server.base_url, exp, clients, per_client))):
                window = Window(server, db)
                window.start()
                seconds = await op()
                spent = window.stop()
                out[f"{name}_per_s"] = total / seconds
                out[f"{name}_cpu_ms"] = {k: round(v / total * 1000, 3) for k, v in sorted(spent.items()) if v > 0}
                if db:
                    out[f"{name}_connections"] = window.sessions  # new PostgreSQL sessions in the window
        finally:
            server.stop()
            if db:
                psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return out


def report(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(f"## {r['server']} (ready in {r['ready_s']:.2f} s)")
        for op in ("log_metric", "create_run"):
            cpu = r.get(f"{op}_cpu_ms", {})
            own = sum(v for k, v in cpu.items() if k != "postgres")
            parts = ", ".join(f"{k} {v:.3f}" for k, v in cpu.items())
            stmts = f", {r[f'{op}_statements']:.1f} statements/request" if f"{op}_statements" in r else ""
            if f"{op}_connections" in r:
                stmts += f", {r[f'{op}_connections']} new connections"
            lines.append(f"- {op}: {r[f'{op}_per_s']:.0f} req/s; CPU ms/request: server {own:.3f} ({parts}){stmts}")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", default="trackgate,mlflow")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=1600)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--trackgate-rev", help="run trackgate from `git archive` of this revision")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as src:
        source = None
        if args.trackgate_rev:
            archive = subprocess.run(["git", "archive", args.trackgate_rev], capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", src], input=archive.stdout, check=True)
            source = Path(src)
        for name in args.servers.split(","):
            print(f"[{time.strftime('%H:%M:%S')}] {name} on {args.backend}", file=sys.stderr, flush=True)
            try:
                result = await measure(SPECS[name], args.backend, args.requests, args.clients, source)
            except Exception as exc:  # one server failing must not lose the others' figures
                print(f"{name}: FAILED: {type(exc).__name__}: {str(exc)[-2000:]}", flush=True)
                continue
            if args.trackgate_rev and SPECS[name].kind == "trackgate":
                result["server"] += f"@{args.trackgate_rev}"
            print(report([result]), flush=True)
            results.append(result)
    print(f"backend {args.backend}, {args.clients} clients, {args.requests} requests per figure; "
          f"load (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    asyncio.run(main())
