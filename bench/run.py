"""Run the same HTTP calls against `trackgate server` and `mlflow server`, alternating; print ratios.

    python bench/run.py            # full: ~10-15 min on 2 cores
    python bench/run.py --quick    # smoke check: small sizes, < 2 min

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`: make `import bench` work
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report
from bench.client import RequestFailed, VerificationFailed
from bench.scenarios import FULL, QUICK, SCENARIOS, Scenario, Sizes, warm_up
from bench.servers import (
    MLFLOW,
    MLFLOW_W1,
    REPO_ROOT,
    TRACKGATE,
    ServerFailed,
    ServerProcess,
    ServerSpec,
    own_cpu,
    system_cpu,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SPECS = {s.name: s for s in (TRACKGATE, MLFLOW, MLFLOW_W1)}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rotated(items: list[Any], k: int) -> list[Any]:
    k %= len(items)
    return items[k:] + items[:k]


async def settle(server: ServerProcess, quiet_cpu: float = 0.05, max_wait: float = 30.0) -> None:
    """Wait until the process tree is idle (< quiet_cpu CPU-seconds per second), at most max_wait."""
    deadline = time.monotonic() + max_wait
    before = server.cpu_seconds()
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = server.cpu_seconds()
        if now - before < quiet_cpu:
            return
        before = now


def error_text(exc: BaseException) -> str:
    if isinstance(exc, (VerificationFailed, RequestFailed, ServerFailed)):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc} ({traceback.format_exc(limit=3).splitlines()[-3].strip()})"


class Bench:
    def __init__(
        self,
        specs: list[ServerSpec],
        sizes: Sizes,
        scenarios: list[Scenario],
        workdir: Path,
        include_skipped: frozenset[str] = frozenset(),
        settle_max: float = 30.0,
        wait_idle_max: float = 0.0,
        trackgate_src: Path | None = None,
    ):
        self.specs = specs
        self.trackgate_src = trackgate_src
        self.wait_idle_max = wait_idle_max
        self.include_skipped = include_skipped
        self.settle_max = settle_max
        self.sizes = sizes
        self.scenarios = scenarios
        self.workdir = workdir
        self.servers: dict[str, ServerProcess] = {}
        self.results: dict[str, Any] = {
            "servers": {s.name: {"startup_samples": [], "scenarios": {}} for s in specs}
        }

    def _rec(self, name: str) -> dict[str, Any]:
        return self.results["servers"][name]

    async def start_all(self) -> None:
        """`sizes.startups` cold starts per server, alternating; the last one stays up for the scenarios."""
        for n in range(self.sizes.startups):
            last = n == self.sizes.startups - 1
            for spec in rotated(self.specs, n):
                server = ServerProcess(spec, self.workdir / f"{spec.name}-{n}", source_dir=self.trackgate_src)
                (busy0, total0), self0 = system_cpu(), own_cpu()
                try:
                    ready = await server.start()
                except ServerFailed as exc:
                    log(f"{spec.name}: did not start: {exc}")
                    self._rec(spec.name)["startup_error"] = str(exc)
                    continue
                busy1, total1 = system_cpu()
                foreign = busy1 - busy0 - server.cpu_seconds() - (own_cpu() - self0)
                sample = {
                    "ready_s": ready,
                    "foreign_cpu_share": max(0.0, foreign / max(total1 - total0, 1e-9)),
                }
                if last:
                    # Idle memory once, on the instance that stays up, after its background start-up
                    # work (mlflow's job runner spawns its consumers after /health answers) is done.
                    await settle(server, max_wait=self.settle_max)
                    sample.update(server.memory())
                    self.servers[spec.name] = server
                    log(
                        f"{spec.name}: ready in {ready:.2f} s; idle PSS {sample['pss_mb']:.0f} MB, "
                        f"RSS {sample['rss_mb']:.0f} MB, {sample['processes']} processes"
                    )
                else:
                    server.stop()
                    log(f"{spec.name}: ready in {ready:.2f} s")
                self._rec(spec.name)["startup_samples"].append(sample)
        for spec in self.specs:
            rec = self._rec(spec.name)
            entry: dict[str, Any] = {"rounds": rec["startup_samples"]}
            if rec["startup_samples"]:
                entry["median"] = report.median_of(rec["startup_samples"])
            if spec.name not in self.servers:
                entry["error"] = rec.get("startup_error", "did not start")
            rec["scenarios"]["startup"] = entry

    async def wait_idle(self) -> None:
        """Wait (at most --wait-idle seconds) until the rest of the machine uses < 10 % of the CPUs."""
        deadline = time.monotonic() + self.wait_idle_max
        while time.monotonic() < deadline:
            ours0 = sum(s.cpu_seconds() for s in self.servers.values()) + own_cpu()
            busy0, total0 = system_cpu()
            await asyncio.sleep(1.0)
            ours1 = sum(s.cpu_seconds() for s in self.servers.values()) + own_cpu()
            busy1, total1 = system_cpu()
            if (busy1 - busy0 - (ours1 - ours0)) / max(total1 - total0, 1e-9) < 0.10:
                return
        if self.wait_idle_max > 0:
            log("the machine is still busy with other work; measuring anyway (see foreign_cpu_share)")

    async def warm_up(self) -> None:
        for name, server in self.servers.items():
            try:
                await warm_up(server.base_url, self.sizes.concurrency, iterations=min(3, self.sizes.rounds))
            except Exception as exc:
                log(f"{name}: warm-up failed: {error_text(exc)}")

    async def _setup(self, scenario: Scenario, name: str, entry: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            state, figures = await scenario.setup(self.servers[name].base_url, self.sizes)
        except Exception as exc:
            entry["error"] = "setup: " + error_text(exc)
            log(f"{scenario.name} / {name}: setup FAILED: {entry['error']}")
            return None
        entry["setup"] = {**figures, "seconds": time.perf_counter() - started, "concurrent_with_others": True}
        return state

    async def run_scenarios(self) -> None:
        for scenario in self.scenarios:
            names = [
                s.name
                for s in self.specs
                if s.name in self.servers and (scenario.name not in s.skip or s.name in self.include_skipped)
            ]
            if not names:  # measured alone, a server that skips this scenario leaves nobody to run it
                continue
            entries = {
                n: self._rec(n)["scenarios"].setdefault(
                    scenario.name, {"title": scenario.title, "rounds": []}
                )
                for n in names
            }
            # Untimed setup (populating) of all servers at once: it is not what is measured, and
            # sequentially it would take mlflow alone minutes for the 5,000-run search.
            setups = await asyncio.gather(*(self._setup(scenario, n, entries[n]) for n in names))
            states = dict(zip(names, setups, strict=True))
            rounds = min(self.sizes.rounds, scenario.max_rounds or self.sizes.rounds)
            for r in range(rounds):
                for n in rotated(names, r):
                    if n not in states or entries[n].get("error"):
                        continue
                    server = self.servers[n]
                    await self.wait_idle()
                    cpu0, self0, (busy0, total0) = server.cpu_seconds(), own_cpu(), system_cpu()
                    try:
                        fig = await scenario.measure(server.base_url, self.sizes, states[n], r)
                    except Exception as exc:
                        entries[n]["error"] = f"round {r + 1}: " + error_text(exc)
                        log(f"{scenario.name} / {n}: round {r + 1} FAILED: {entries[n]['error']}")
                        continue
                    fig["server_cpu_s"] = server.cpu_seconds() - cpu0
                    busy1, total1 = system_cpu()
                    # CPU used meanwhile by processes other than this server and the load generator
                    # (other servers idling, anything else on the machine), as a share of all CPUs.
                    foreign = (busy1 - busy0) - fig["server_cpu_s"] - (own_cpu() - self0)
                    fig["foreign_cpu_share"] = max(0.0, foreign / max(total1 - total0, 1e-9))
                    entries[n]["rounds"].append(fig)
                    shown = {
                        k: round(v, 2) for k, v in fig.items() if isinstance(v, float) and k != "server_cpu_s"
                    }
                    log(f"{scenario.name} / {n} / round {r + 1}: {shown}")
            for n in names:
                if entries[n]["rounds"]:
                    entries[n]["median"] = report.median_of(entries[n]["rounds"])

    async def measure_after(self) -> None:
        for n, server in self.servers.items():
            await settle(server, max_wait=self.settle_max)
            self._rec(n)["scenarios"]["after"] = {"rounds": [server.memory()], "median": server.memory()}

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()

    async def run(self) -> dict[str, Any]:
        try:
            await self.start_all()
            await self.warm_up()
            await self.run_scenarios()
            await self.measure_after()
        finally:
            self.stop_all()
        return self.results


def meta(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    def out(cmd: list[str]) -> str:
        try:
            return subprocess.run(
                cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    try:
        import mlflow

        mlflow_version = mlflow.__version__
    except ImportError:
        mlflow_version = out(["mlflow", "--version"])
    return {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "servers_measured": "together, alternating" if args.together else "alone, one after another",
        "sizes": dataclasses.asdict(sizes),
        "git_commit": out(["git", "rev-parse", "HEAD"]),
        "git_dirty": bool(out(["git", "status", "--porcelain", "--untracked-files=no"])),
        "trackgate_rev": args.trackgate_rev,
        "trackgate_commit": out(["git", "rev-parse", args.trackgate_rev]) if args.trackgate_rev else None,
        "mlflow_version": mlflow_version,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, one round (< 2 min)")
    p.add_argument(
        "--servers",
        help=f"comma-separated, from {', '.join(SPECS)} (default: all three; with --quick: trackgate,mlflow)",
    )
    p.add_argument(
        "--all-scenarios-w1",
        action="store_true",
        help="also run the 5,000-run search against mlflow-w1 (adds several minutes)",
    )
    p.add_argument(
        "--scenarios",
        default="",
        help=f"comma-separated subset of {', '.join(s.name for s in SCENARIOS)} (default: all)",
    )
    p.add_argument("--rounds", type=int, help="override the number of measured rounds")
    p.add_argument("--startups", type=int, help="override the number of cold starts per server")
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement wait up to SECONDS for other processes on the machine "
        "to use < 10%% of the CPUs (default 0: measure at once; the share is recorded)",
    )
    p.add_argument(
        "--trackgate-rev",
        metavar="REV",
        help="run trackgate from `git archive REV` (e.g. HEAD) instead of the working tree, so that "
        "uncommitted edits in progress do not end up in the figures",
    )
    p.add_argument(
        "--together",
        action="store_true",
        help="keep every server up for the whole run and alternate between them each round (faster: "
        "populating runs on all at once) instead of measuring each server alone, one after another",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp dir (databases and server logs)")
    p.add_argument("--no-save", action="store_true", help="do not write bench/results/<timestamp>.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    if args.startups:
        sizes = dataclasses.replace(sizes, startups=args.startups)
    try:
        servers = args.servers or ("trackgate,mlflow" if args.quick else "trackgate,mlflow,mlflow-w1")
        specs = [SPECS[n.strip()] for n in servers.split(",") if n.strip()]
    except KeyError as exc:
        print(f"unknown server {exc}; choose from {', '.join(SPECS)}", file=sys.stderr)
        return 2
    wanted = {n.strip() for n in args.scenarios.split(",") if n.strip()}
    unknown = wanted - {s.name for s in SCENARIOS}
    if unknown:
        print(f"unknown scenario(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    scenarios = [s for s in SCENARIOS if not wanted or s.name in wanted]

    workdir = Path(tempfile.mkdtemp(prefix="trackgate-bench-"))
    started = time.perf_counter()
    trackgate_src = None
    if args.trackgate_rev:
        trackgate_src = workdir / "trackgate-src"
        trackgate_src.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.trackgate_rev], cwd=REPO_ROOT, capture_output=True, check=False
        )
        if archive.returncode != 0:
            print(f"git archive {args.trackgate_rev}: {archive.stderr.decode().strip()}", file=sys.stderr)
            shutil.rmtree(workdir, ignore_errors=True)
            return 2
        subprocess.run(["tar", "-x", "-C", str(trackgate_src)], input=archive.stdout, check=True)
    log(f"{'quick' if args.quick else 'full'} run: {', '.join(s.name for s in specs)}; temp dir {workdir}")
    try:
        # Alone by default: an idle `mlflow server` is 10-15 processes whose wake-ups still cost
        # the server under test a little, and a fresh one keeps both cores busy for a minute.
        groups = [specs] if args.together else [[spec] for spec in specs]
        results = {"servers": {}}
        for group in groups:
            bench = Bench(
                group,
                sizes,
                scenarios,
                workdir,
                include_skipped=frozenset({"mlflow-w1"}) if args.all_scenarios_w1 else frozenset(),
                settle_max=10.0 if args.quick else 30.0,
                wait_idle_max=args.wait_idle,
                trackgate_src=trackgate_src,
            )
            results["servers"].update(asyncio.run(bench.run())["servers"])
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results = {"meta": {**meta(args, sizes), "seconds": time.perf_counter() - started}, **results}
    rows = report.build_rows(results)
    results["table"] = [{k: v for k, v in row.items() if k != "fmt"} for row in rows]
    table = report.markdown(results, rows)
    title = (
        f"trackgate vs mlflow {results['meta']['mlflow_version']} "
        f"({results['meta']['mode']}, {sizes.rounds} round(s), median; "
        f"search over {sizes.search_runs} runs, history of {sizes.history_points} points, "
        f"{results['meta']['cpus']} CPUs, {results['meta']['seconds']:.0f} s)"
    )
    print(f"\n{title}\n\n{table}\n")
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = RESULTS_DIR / f"{stamp}{'-quick' if args.quick else ''}.json"
        path.write_text(json.dumps(results, indent=2, default=str))
        log(f"results written to {path.relative_to(REPO_ROOT)}")
    failed = any(row["errors"].get("trackgate") for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
