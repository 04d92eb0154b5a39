"""Gateway authentication overhead: log_metric with 16 clients, auth off vs basic vs bearer JWT.

    python -m bench.bench_auth                 # 5 rounds of 6 s per mode (~2 min)
    python -m bench.bench_auth --quick         # 1 round of 2 s per mode

Two `trackgate server`s, each on its own fresh SQLite file: one open (no --auth), one with
`--auth basic,bearer` whose user and token are made with `trackgate users create` and
`trackgate tokens issue`, as an operator would. Modes take turns within every round (open,
basic, bearer, in a rotating order) so a busy machine slows them alike. Each mode: 16 clients,
each with its own keep-alive connection and its own run, calling runs/log-metric back to back
for the round's duration; every answer must be 200. Reported: median throughput per mode and
its ratio to the open server (target: each auth method costs < 10 %), plus the share of the
machine's CPU other processes used meanwhile.

Throughput on a shared 2-core machine moves by more than the cost measured, so the
authenticators' own per-request time is measured too, in process (a verified credential, as
every request after the first sends it): that figure does not depend on the neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/bench_auth.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.client import Client, RequestFailed
from bench.servers import REPO_ROOT, TRACKGATE, ServerProcess, ServerSpec, own_cpu, system_cpu

CLIENTS = 16
PASSWORD = "bench-password-1"


def cli(*args: str, stdin: str = "") -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKGATE_", "MLFLOW_"))}
    done = subprocess.run([sys.executable, "-m", "gateway.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO_ROOT, env=env, timeout=300, check=True)
    return done.stdout.strip()


class AuthClient(Client):
    """The benchmark's client with a fixed Authorization header, as the mlflow client sends one."""

    def __init__(self, base_url: str, authorization: str | None) -> None:
        super().__init__(base_url)
        if authorization:
            self.session.headers["Authorization"] = authorization


async def throughput(base_url: str, authorization: str | None, seconds: float) -> float:
    """Requests per second of 16 clients logging metrics back to back for `seconds`."""
    clients = [AuthClient(base_url, authorization) for _ in range(CLIENTS)]
    try:
        experiment = await clients[0].create_experiment(f"auth-bench-{time.monotonic_ns()}")
        runs = [(await c.create_run(experiment, f"r{i}"))[0]["run_id"] for i, c in enumerate(clients)]
        counts = [0] * CLIENTS
        deadline = time.perf_counter() + seconds

        async def work(i: int) -> None:
            step = 0
            while time.perf_counter() < deadline:
                await clients[i].log_metric(runs[i], "loss", 1.0 / (step + 1), step, int(time.time() * 1000))
                step += 1
                counts[i] += 1

        started = time.perf_counter()
        await asyncio.gather(*(work(i) for i in range(CLIENTS)))
        return sum(counts) / (time.perf_counter() - started)
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    rounds, seconds = (1, 2.0) if args.quick else (args.rounds, args.seconds)
    with tempfile.TemporaryDirectory(prefix="tg-auth-bench-") as tmp:
        work = Path(tmp)
        (work / "auth").mkdir()
        db = f"sqlite:///{work}/auth/tg.db"
        cli("users", "create", "bench", "--backend-store-uri", db, stdin=PASSWORD + "\n")
        token = cli("tokens", "issue", "--subject", "bench-ci", "--ttl", "1d", "--backend-store-uri", db)
        basic = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
        open_server = ServerProcess(TRACKGATE, work / "open")
        auth_spec = ServerSpec("trackgate-auth", "trackgate", "/readyz", ("--auth", "basic,bearer"))
        auth_server = ServerProcess(auth_spec, work / "auth")
        modes = {
            "off": (open_server, None),
            "basic": (auth_server, basic),
            "bearer": (auth_server, f"Bearer {token}"),
        }
        samples: dict[str, list[float]] = {m: [] for m in modes}
        try:
            await asyncio.gather(open_server.start(), auth_server.start())
            for server, header in modes.values():  # warm-up, untimed: caches, connections
                await throughput(server.base_url, header, 1.0)
            busy0, total0 = system_cpu()
            ours0 = open_server.cpu_seconds() + auth_server.cpu_seconds() + own_cpu()
            names = list(modes)
            for r in range(rounds):
                order = names[r % 3:] + names[: r % 3]
                for mode in order:
                    server, header = modes[mode]
                    samples[mode].append(await throughput(server.base_url, header, seconds))
                print(f"round {r + 1}/{rounds}: " + ", ".join(f"{m} {samples[m][-1]:.0f}/s" for m in names),
                      file=sys.stderr)
            busy1, total1 = system_cpu()
            ours1 = open_server.cpu_seconds() + auth_server.cpu_seconds() + own_cpu()
        finally:
            open_server.stop()
            auth_server.stop()
    medians = {m: statistics.median(v) for m, v in samples.items()}
    foreign = (busy1 - busy0 - (ours1 - ours0)) / max(total1 - total0, 1e-9)
    return {"clients": CLIENTS, "rounds": rounds, "seconds_per_mode": seconds, "samples": samples,
            "median_req_per_s": medians, "ratio_to_off": {m: medians[m] / medians["off"] for m in medians},
            "foreign_cpu_share": foreign}


async def per_request_microseconds(n: int = 20_000) -> dict[str, float]:
    """Time of one authenticate() call for an already verified credential, in microseconds."""
    from datetime import timedelta

    from aiohttp.test_utils import make_mocked_request

    from gateway.auth.basic import BasicAuthenticator, UserSources
    from gateway.auth.bearer import BearerAuthenticator
    from gateway.auth.passwords import hash_password
    from gateway.auth.signing import generate
    from gateway.auth.tokens import OwnTokens, Revocations, issue
    from gateway.config import load
    from tracking_core.store import schema
    from tracking_core.store.database import create_engine
    from tracking_core.store.tables import users

    out = {}
    with tempfile.TemporaryDirectory(prefix="tg-auth-micro-") as tmp:
        config = load({"backend_store_uri": f"sqlite:///{tmp}/t.db"}, env={})
        await schema.prepare(config)
        engine = create_engine(config)
        try:
            async with engine.begin() as conn:
                await conn.execute(users.insert().values(name="bench", password_hash=hash_password(PASSWORD),
                                                         is_admin=False, created_time=0, password_changed_time=0))
            key = generate()
            token, _ = issue(key, config, "bench-ci", timedelta(hours=1))
            cases = {
                "basic": (BasicAuthenticator(UserSources(engine, None), 30.0),
                          "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()),
                "bearer": (BearerAuthenticator(OwnTokens(key, config, Revocations(engine)), [], 30.0),
                           f"Bearer {token}"),
            }
            for name, (authenticator, header) in cases.items():
                request = make_mocked_request("POST", "/api/2.0/mlflow/runs/log-metric",
                                              headers={"Authorization": header})
                assert await authenticator.authenticate(request) is not None  # the first, slow check
                started = time.perf_counter()
                for _ in range(n):
                    await authenticator.authenticate(request)
                out[name] = (time.perf_counter() - started) / n * 1e6
        finally:
            await engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--json", metavar="FILE", help="Also write the results here.")
    args = parser.parse_args()
    try:
        results = asyncio.run(main_async(args))
    except RequestFailed as exc:
        print(f"bench_auth: a request failed: {exc}", file=sys.stderr)
        return 1
    results["authenticate_us"] = asyncio.run(per_request_microseconds())
    medians, ratios = results["median_req_per_s"], results["ratio_to_off"]
    print(f"log_metric, {CLIENTS} clients, median of {results['rounds']} rounds "
          f"(other processes used {results['foreign_cpu_share']:.0%} of the CPU meanwhile)")
    print("| auth | req/s | vs off | cost |")
    print("| --- | ---: | ---: | ---: |")
    for mode in medians:
        print(f"| {mode} | {medians[mode]:.0f} | {ratios[mode]:.3f} | {1 - ratios[mode]:+.1%} |")
    per_request = ", ".join(f"{m} {us:.1f} µs" for m, us in results["authenticate_us"].items())
    budget = 1e6 / medians["off"] * 2  # CPU-µs per request on this 2-core machine, at the open rate
    print(f"authenticate() per request, credential already verified: {per_request} "
          f"(one request costs ~{budget:.0f} CPU-µs in all)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
