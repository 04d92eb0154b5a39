"""Authentication overhead: 16 clients, auth off vs basic vs bearer JWT vs session cookie.

    python -m bench.bench_auth                 # 5 rounds of 6 s per mode and scenario (~5 min)
    python -m bench.bench_auth --quick         # 1 round of 2 s

Two `trackgate server`s, each on its own fresh SQLite file: one open (no --auth), one with
`--auth basic,bearer,oidc` whose user and token are made with `trackgate users create` and
`trackgate tokens issue`, as an operator would; its session cookie is minted with the server's
cookie secret, as a sign-in would issue it (no provider is contacted: a session without a
refresh token is read from the cookie alone). With auth on, the core authorizes too (the caller
is a non-admin who created the experiment, so holds MANAGE on it) and writes an audit record per
state-changing request: the whole cost a deployment pays for turning auth on.

Scenarios: `log_metric` (each client its own run, back to back) and `create_run` (each client
creating runs back to back). Modes take turns within every round (off, basic, bearer, session in
a rotating order) so a busy machine slows them alike. Reported per scenario and mode: the median
throughput, its range over the rounds and its ratio to the open server (target of #9: each auth
method within 10 %), and the CPU per request of the gateway and of the core processes (steadier
than throughput on a shared machine), with the load average and the share of the CPU other
processes used meanwhile.

The authenticators' own per-request time is measured too, in process (a verified credential, as
every request after the first sends it): that figure does not depend on the neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/bench_auth.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.client import Client, RequestFailed
from bench.servers import REPO_ROOT, TRACKGATE, ServerProcess, ServerSpec, own_cpu, system_cpu

CLIENTS = 16
PASSWORD = "bench-password-1"
MODES = ("off", "basic", "bearer", "session")
SCENARIOS = ("log_metric", "create_run")


def cli(*args: str, stdin: str = "") -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKGATE_", "MLFLOW_"))}
    done = subprocess.run([sys.executable, "-m", "gateway.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO_ROOT, env=env, timeout=300, check=True)
    return done.stdout.strip()


class AuthClient(Client):
    """The benchmark's client with fixed credential headers, as the mlflow client or a browser sends them."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        super().__init__(base_url)
        self.session.headers.update(headers)


def cpu_by_role(server: ServerProcess) -> tuple[float, float]:
    """CPU-seconds so far of the gateway process(es) and of the core workers of one server."""
    tick = os.sysconf("SC_CLK_TCK")
    gateway = core = 0
    for pid in server.pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            is_core = b"tracking_core.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        used = int(stat[11]) + int(stat[12])
        if is_core:
            core += used
        else:
            gateway += used
    return gateway / tick, core / tick


Work = Callable[[int, AuthClient], Awaitable[None]]


async def _prepare(scenario: str, clients: list[AuthClient]) -> Work:
    experiment = await clients[0].create_experiment(f"auth-bench-{time.monotonic_ns()}")
    if scenario == "create_run":
        async def create(i: int, client: AuthClient) -> None:
            await client.create_run(experiment, f"c{i}")
        return create
    runs = [(await c.create_run(experiment, f"r{i}"))[0]["run_id"] for i, c in enumerate(clients)]
    steps = [0] * len(clients)

    async def log(i: int, client: AuthClient) -> None:
        steps[i] += 1
        await client.log_metric(runs[i], "loss", 1.0 / steps[i], steps[i], int(time.time() * 1000))
    return log


async def measure(server: ServerProcess, headers: dict[str, str], scenario: str, seconds: float) -> dict[str, float]:
    """Requests per second of 16 clients for `seconds`, and the server's CPU-µs per request."""
    clients = [AuthClient(server.base_url, headers) for _ in range(CLIENTS)]
    try:
        work = await _prepare(scenario, clients)
        counts = [0] * CLIENTS
        deadline = time.perf_counter() + seconds

        async def loop(i: int) -> None:
            while time.perf_counter() < deadline:
                await work(i, clients[i])
                counts[i] += 1

        gateway0, core0 = cpu_by_role(server)
        started = time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(CLIENTS)))
        elapsed = time.perf_counter() - started
        gateway1, core1 = cpu_by_role(server)
        done = sum(counts)
        return {"req_per_s": done / elapsed, "gateway_cpu_us": (gateway1 - gateway0) / done * 1e6,
                "core_cpu_us": (core1 - core0) / done * 1e6}
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from gateway.auth.session import SESSION_COOKIE, mint_session_cookie
    from gateway.config import decode_cookie_secret

    rounds, seconds = (1, 2.0) if args.quick else (args.rounds, args.seconds)
    scenarios = args.scenario or list(SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="tg-auth-bench-") as tmp:
        work = Path(tmp)
        (work / "auth").mkdir()
        db = f"sqlite:///{work}/auth/tg.db"
        cli("users", "create", "bench", "--backend-store-uri", db, stdin=PASSWORD + "\n")
        token = cli("tokens", "issue", "--subject", "bench-ci", "--ttl", "1d", "--backend-store-uri", db)
        cookie_secret = base64.b64encode(secrets.token_bytes(32)).decode()
        cookie = mint_session_cookie(decode_cookie_secret(cookie_secret), "bench-sso", email="bench@example.test",
                                     lifetime=timedelta(days=1))
        open_server = ServerProcess(TRACKGATE, work / "open")
        auth_spec = ServerSpec("trackgate-auth", "trackgate", "/readyz", (
            "--auth", "basic,bearer,oidc",
            # No provider runs: discovery fails with a warning at start-up, and a session without a
            # refresh token never needs it.
            "--oidc-issuer-url", "http://127.0.0.1:9", "--oidc-client-id", "bench",
            "--oidc-client-secret", "bench", "--oidc-email-domains", "*", "--cookie-secret", cookie_secret,
        ))
        auth_server = ServerProcess(auth_spec, work / "auth")
        basic = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
        modes: dict[str, tuple[ServerProcess, dict[str, str]]] = {
            "off": (open_server, {}),
            "basic": (auth_server, {"Authorization": basic}),
            "bearer": (auth_server, {"Authorization": f"Bearer {token}"}),
            "session": (auth_server, {"Cookie": f"{SESSION_COOKIE}={cookie}"}),
        }
        samples: dict[str, dict[str, list[dict[str, float]]]] = {s: {m: [] for m in modes} for s in scenarios}
        try:
            await asyncio.gather(open_server.start(), auth_server.start())
            for server, headers in modes.values():  # warm-up, untimed: caches, connections
                await measure(server, headers, "log_metric", 1.0)
            load_before = os.getloadavg()
            busy0, total0 = system_cpu()
            ours0 = open_server.cpu_seconds() + auth_server.cpu_seconds() + own_cpu()
            for r in range(rounds):
                order = list(MODES[r % 4:] + MODES[: r % 4])
                for scenario in scenarios:
                    for mode in order:
                        server, headers = modes[mode]
                        samples[scenario][mode].append(await measure(server, headers, scenario, seconds))
                    print(f"round {r + 1}/{rounds} {scenario}: " + ", ".join(
                        f"{m} {samples[scenario][m][-1]['req_per_s']:.0f}/s" for m in MODES), file=sys.stderr)
            busy1, total1 = system_cpu()
            ours1 = open_server.cpu_seconds() + auth_server.cpu_seconds() + own_cpu()
            load_after = os.getloadavg()
        finally:
            open_server.stop()
            auth_server.stop()
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for scenario, by_mode in samples.items():
        off = statistics.median(s["req_per_s"] for s in by_mode["off"])
        summary[scenario] = {}
        for mode, runs in by_mode.items():
            rates = [s["req_per_s"] for s in runs]
            summary[scenario][mode] = {
                "median_req_per_s": statistics.median(rates), "min": min(rates), "max": max(rates),
                "ratio_to_off": statistics.median(rates) / off,
                "gateway_cpu_us": statistics.median(s["gateway_cpu_us"] for s in runs),
                "core_cpu_us": statistics.median(s["core_cpu_us"] for s in runs),
            }
    foreign = (busy1 - busy0 - (ours1 - ours0)) / max(total1 - total0, 1e-9)
    return {"clients": CLIENTS, "rounds": rounds, "seconds_per_mode": seconds, "samples": samples,
            "summary": summary, "foreign_cpu_share": foreign, "load_before": load_before, "load_after": load_after}


async def per_request_microseconds(n: int = 20_000) -> dict[str, float]:
    """Time of one authenticate() call for an already verified credential, in microseconds."""
    from aiohttp.test_utils import make_mocked_request

    from gateway.auth.basic import BasicAuthenticator, UserSources
    from gateway.auth.bearer import BearerAuthenticator
    from gateway.auth.passwords import hash_password
    from gateway.auth.session import SESSION_COOKIE, SessionAuthenticator, SessionCookies, mint_session_cookie
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
            secret = secrets.token_bytes(32)
            cookie = mint_session_cookie(secret, "bench-sso", lifetime=timedelta(days=1))
            cases = {
                "basic": (BasicAuthenticator(UserSources(engine, None), 30.0),
                          {"Authorization": "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()}),
                "bearer": (BearerAuthenticator(OwnTokens(key, config, Revocations(engine)), [], 30.0),
                           {"Authorization": f"Bearer {token}"}),
                "session": (SessionAuthenticator(SessionCookies(secret, timedelta(days=1)), None, config),
                            {"Cookie": f"{SESSION_COOKIE}={cookie}"}),
            }
            for name, (authenticator, headers) in cases.items():
                request = make_mocked_request("POST", "/api/2.0/mlflow/runs/log-metric", headers=headers)
                assert await authenticator.authenticate(request) is not None  # the first, slow check
                started = time.perf_counter()
                for _ in range(n):
                    await authenticator.authenticate(request)
                out[name] = (time.perf_counter() - started) / n * 1e6
        finally:
            await engine.dispose()
    return out


def report(results: dict[str, Any]) -> None:
    lb, la = results["load_before"], results["load_after"]
    print(f"{CLIENTS} clients, median of {results['rounds']} rounds of {results['seconds_per_mode']:.0f} s; "
          f"load average {lb[0]:.2f} before, {la[0]:.2f} after; other processes used "
          f"{results['foreign_cpu_share']:.0%} of the CPU meanwhile")
    for scenario, by_mode in results["summary"].items():
        print(f"\n{scenario}:")
        print("| auth | req/s (median) | range | vs off | gateway CPU µs/req | core CPU µs/req |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for mode, s in by_mode.items():
            print(f"| {mode} | {s['median_req_per_s']:.0f} | {s['min']:.0f}-{s['max']:.0f} | "
                  f"{s['ratio_to_off']:.3f} | {s['gateway_cpu_us']:.0f} | {s['core_cpu_us']:.0f} |")
    per_request = ", ".join(f"{m} {us:.1f} µs" for m, us in results["authenticate_us"].items())
    print(f"\nauthenticate() per request, credential already verified: {per_request}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="Only this scenario (repeatable).")
    parser.add_argument("--json", metavar="FILE", help="Also write the results here.")
    args = parser.parse_args()
    try:
        results = asyncio.run(main_async(args))
    except RequestFailed as exc:
        print(f"bench_auth: a request failed: {exc}", file=sys.stderr)
        return 1
    results["authenticate_us"] = asyncio.run(per_request_microseconds())
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
