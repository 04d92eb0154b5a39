"""A small MLflow REST client for load generation: one keep-alive connection per simulated client.

It sends the request bodies the official `mlflow` 3.17 client sends (see the REST reference, §4):
both `run_id` and `run_uuid`, the four system tags on runs/create, GET query strings for
get-history, `max_results=25000` plus page tokens for history and `max_results=10000` for search.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
import orjson

API = "/api/2.0/mlflow/"
JSON_HEADERS = {"Content-Type": "application/json"}
REQUEST_TIMEOUT = 120.0  # the mlflow client's default per-request timeout

T = TypeVar("T")


class RequestFailed(Exception):
    """A non-200 answer or a transport error, with how long the attempt took."""

    def __init__(self, what: str, seconds: float, status: int | None = None):
        super().__init__(what)
        self.seconds = seconds
        self.status = status


class VerificationFailed(AssertionError):
    """The server answered 200 but the data it stored or returned is not what was sent."""


def now_ms() -> int:
    return int(time.time() * 1000)


class Client:
    """One simulated client: an aiohttp session holding a single keep-alive connection.

    aiohttp sets TCP_NODELAY on its sockets, as requests/urllib3 (the mlflow client) does.
    """

    def __init__(self, base_url: str, timeout: float = REQUEST_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(
        self,
        method: str,
        endpoint: str,
        body: dict[str, Any] | None = None,
        params: Sequence[tuple[str, str]] | None = None,
    ) -> tuple[dict[str, Any], float]:
        """(parsed JSON answer, seconds). Raises RequestFailed on anything but a 200 JSON answer."""
        url = self.base_url + API + endpoint
        data = orjson.dumps(body) if body is not None else None
        headers = JSON_HEADERS if data is not None else None
        started = time.perf_counter()
        try:
            async with self.session.request(method, url, data=data, params=params, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RequestFailed(
                f"{method} {endpoint}: {type(exc).__name__}: {exc}", time.perf_counter() - started
            ) from exc
        seconds = time.perf_counter() - started
        if status != 200:
            raise RequestFailed(f"{method} {endpoint}: HTTP {status}: {raw[:300]!r}", seconds, status)
        try:
            return (orjson.loads(raw) if raw else {}), seconds
        except orjson.JSONDecodeError as exc:
            raise RequestFailed(f"{method} {endpoint}: not JSON: {raw[:200]!r}", seconds, status) from exc

    # --- the calls the benchmark makes, shaped like the mlflow client's ---------------------------

    async def create_experiment(self, name: str) -> str:
        answer, _ = await self.call("POST", "experiments/create", {"name": name})
        return str(answer["experiment_id"])

    async def create_run(
        self, experiment_id: str, run_name: str, extra_tags: Sequence[tuple[str, str]] = ()
    ) -> tuple[dict[str, Any], float]:
        tags = [
            {"key": "mlflow.user", "value": "bench"},
            {"key": "mlflow.source.name", "value": "bench/run.py"},
            {"key": "mlflow.source.type", "value": "LOCAL"},
            {"key": "mlflow.runName", "value": run_name},
            *({"key": k, "value": v} for k, v in extra_tags),
        ]
        body = {
            "experiment_id": experiment_id,
            "user_id": "bench",
            "run_name": run_name,
            "start_time": now_ms(),
            "tags": tags,
        }
        answer, seconds = await self.call("POST", "runs/create", body)
        info = answer.get("run", {}).get("info", {})
        run_id = info.get("run_id", "")
        if (
            len(run_id) != 32
            or info.get("experiment_id") != experiment_id
            or info.get("status") != "RUNNING"
            or info.get("run_name") != run_name
        ):
            raise VerificationFailed(f"runs/create answered an unexpected run: {info}")
        return info, seconds

    async def log_metric(self, run_id: str, key: str, value: float, step: int, timestamp: int) -> float:
        body = {
            "run_uuid": run_id,
            "run_id": run_id,
            "key": key,
            "value": value,
            "timestamp": timestamp,
            "step": step,
        }
        _, seconds = await self.call("POST", "runs/log-metric", body)
        return seconds

    async def log_batch(
        self,
        run_id: str,
        metrics: Sequence[dict[str, Any]] = (),
        params: Sequence[dict[str, str]] = (),
        tags: Sequence[dict[str, str]] = (),
    ) -> float:
        body: dict[str, Any] = {"run_id": run_id}
        if metrics:
            body["metrics"] = list(metrics)
        if params:
            body["params"] = list(params)
        if tags:
            body["tags"] = list(tags)
        _, seconds = await self.call("POST", "runs/log-batch", body)
        return seconds

    async def search_runs(
        self, experiment_ids: Sequence[str], filter_string: str = "", max_results: int = 10000
    ) -> list[dict[str, Any]]:
        """All matching runs, following page tokens (as `mlflow.search_runs` does)."""
        runs: list[dict[str, Any]] = []
        token = None
        for _ in range(10_000):
            body: dict[str, Any] = {
                "experiment_ids": list(experiment_ids),
                "filter": filter_string,
                "run_view_type": "ACTIVE_ONLY",
                "max_results": max_results,
            }
            if token:
                body["page_token"] = token
            answer, _ = await self.call("POST", "runs/search", body)
            runs.extend(answer.get("runs", []))
            token = answer.get("next_page_token")
            if not token:
                return runs
        raise VerificationFailed("runs/search: page tokens never ended")

    async def get_metric_history(self, run_id: str, key: str, page_size: int = 25000) -> list[dict[str, Any]]:
        """Every point, the way MlflowClient.get_metric_history fetches them."""
        points: list[dict[str, Any]] = []
        token = None
        for _ in range(100_000):
            params = [
                ("run_uuid", run_id),
                ("run_id", run_id),
                ("metric_key", key),
                ("max_results", str(page_size)),
            ]
            if token:
                params.append(("page_token", token))
            answer, _ = await self.call("GET", "metrics/get-history", params=params)
            page = answer.get("metrics", [])
            token = answer.get("next_page_token")
            if token and not page:
                raise VerificationFailed("metrics/get-history: an empty page with a next_page_token")
            points.extend(page)
            if not token:
                return points
        raise VerificationFailed("metrics/get-history: page tokens never ended")


async def with_clients(base_url: str, n: int, work: Callable[[int, Client], Awaitable[T]]) -> list[T]:
    """Run `work(i, client)` for n simulated clients at once, each on its own connection."""
    clients = [Client(base_url) for _ in range(n)]
    try:
        return list(await asyncio.gather(*(work(i, c) for i, c in enumerate(clients))))
    finally:
        await asyncio.gather(*(c.close() for c in clients))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(seconds, 50) * 1000,
        "p99_ms": percentile(seconds, 99) * 1000,
        "max_ms": (max(seconds) * 1000) if seconds else float("nan"),
        "requests": len(seconds),
    }
