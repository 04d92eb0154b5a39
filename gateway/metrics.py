"""Prometheus metrics at /metrics on `--metrics-address`, a listener of its own, never the public port.

Off unless `metrics_address` or mlflow's `expose_prometheus` DIR is set. Always in prometheus
client's multiprocess mode: every process (the primary gateway, the extra gateway processes of
gateway_workers, each core worker) writes its values to files in one directory (DIR, or a private
temporary one), and a scrape of the primary's listener sums them. The other processes inherit the
directory as PROMETHEUS_MULTIPROC_DIR; the core workers report their database pool use
(tracking_core/metrics.py). The supervisor's state (live core workers and gateway processes,
restarts) is the primary's, read at scrape time rather than pushed; a dead worker's gauges are
dropped then (its counters stay: what it counted happened).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway import keys
from gateway.config import Config

if TYPE_CHECKING:
    from gateway.access_log import RequestRecord

log = logging.getLogger("trackgate.metrics")

DEFAULT_ADDRESS = "127.0.0.1:9090"  # with expose_prometheus alone
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# Routes that move artifact bytes through the gateway (proxied artifacts and run/model downloads).
_ARTIFACT_ROUTE_MARKS = ("/mlflow-artifacts/", "get-artifact")


class Metrics:
    def __init__(self, directory: str) -> None:
        # Read by prometheus_client when it is first imported (here, and in each core worker,
        # which inherits the environment): set before that import.
        Path(directory).mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess

        self.directory = directory
        self.registry = CollectorRegistry(auto_describe=True)
        multiprocess.MultiProcessCollector(self.registry, path=directory)
        # registry=None: the values go to files and the collector above reads them back;
        # registering the metrics themselves too would count each twice.
        self.requests = Counter(
            "trackgate_http_requests", "Requests answered by the gateway.",
            ["method", "route", "status"], registry=None,
        )
        self.latency = Histogram(
            "trackgate_http_request_duration_seconds", "Time from request to the last response byte.",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=None,
        )
        self.auth = Counter(
            "trackgate_auth", "Authentication outcomes (accepted, refused, missing, throttled, skipped, open).",
            ["method", "outcome"], registry=None,
        )
        self.artifact_bytes = Counter(
            "trackgate_artifact_bytes", "Artifact bytes through the gateway.", ["direction"], registry=None,
        )

    def observe(self, record: RequestRecord) -> None:
        self.requests.labels(record.method, record.route, str(record.status)).inc()
        self.latency.labels(record.method, record.route).observe(record.duration)
        self.auth.labels(record.auth_method, record.auth_outcome).inc()
        if any(mark in record.route for mark in _ARTIFACT_ROUTE_MARKS):
            if record.bytes_in:
                self.artifact_bytes.labels("in").inc(record.bytes_in)
            if record.bytes_out:
                self.artifact_bytes.labels("out").inc(record.bytes_out)

    def watch_supervisor(self, app: web.Application) -> None:
        self.registry.register(_SupervisorCollector(app))

    def exposition(self, live_pids: set[int]) -> bytes:
        from prometheus_client import generate_latest, multiprocess

        # A worker that died keeps its gauge files; its pool is gone, so they must not count.
        for path in Path(self.directory).glob("gauge_live*_*.db"):
            pid = path.stem.rsplit("_", 1)[-1]
            if pid.isdigit() and int(pid) not in live_pids:
                multiprocess.mark_process_dead(int(pid), self.directory)
        return generate_latest(self.registry)


class _SupervisorCollector:
    """Core worker state, read from the supervisor at scrape time."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        supervisor = self.app.get(keys.supervisor)
        if supervisor is None:
            return
        yield GaugeMetricFamily("trackgate_core_workers", "Live tracking-core worker processes.",
                                value=supervisor.live_workers)
        yield GaugeMetricFamily("trackgate_core_available", "1 while the core answers its health check.",
                                value=int(supervisor.available))
        yield CounterMetricFamily("trackgate_core_worker_restarts", "Core workers restarted after they died.",
                                  value=supervisor.restarts)
        pool = self.app.get(keys.gateway_pool)
        yield GaugeMetricFamily("trackgate_gateway_processes", "Live gateway processes on the public port.",
                                value=1 + (len(pool.pids) if pool is not None else 0))
        yield CounterMetricFamily("trackgate_gateway_process_restarts", "Gateway processes restarted after "
                                  "they died.", value=pool.restarts if pool is not None else 0)


def install(app: web.Application, *, listener: bool = True) -> None:
    """Turn metrics on for the gateway `app` when configured: the collector and its own listener.

    Without `listener` (an extra gateway process), only the values: into the directory the
    primary made and handed down as PROMETHEUS_MULTIPROC_DIR, which the primary's scrape reads."""
    config = app[keys.config]
    if not (config.metrics_address or config.expose_prometheus):
        return
    if not listener:
        app[keys.metrics] = Metrics(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        return
    if config.expose_prometheus:
        directory = config.expose_prometheus
        _clear(directory)
    else:
        directory = tempfile.mkdtemp(prefix="trackgate-metrics-")
        app.on_cleanup.append(lambda _: asyncio.to_thread(shutil.rmtree, directory, True))
    metrics = Metrics(directory)
    metrics.watch_supervisor(app)
    app[keys.metrics] = metrics
    app.cleanup_ctx.append(_listener_ctx)


def _clear(directory: str) -> None:
    """Values left by an earlier run would be added to this one's (prometheus_client's advice)."""
    for child in Path(directory).glob("*.db"):
        child.unlink()


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


async def _listener_ctx(app: web.Application) -> AsyncIterator[None]:
    config: Config = app[keys.config]
    metrics = app[keys.metrics]
    host, port = split_address(config.metrics_address or DEFAULT_ADDRESS)

    async def serve_metrics(request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        supervisor, pool = app.get(keys.supervisor), app.get(keys.gateway_pool)
        live = {os.getpid(), *(supervisor.worker_pids if supervisor else ()), *(pool.pids if pool else ())}
        body = await asyncio.to_thread(metrics.exposition, live)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    metrics_app = web.Application()
    metrics_app.router.add_get("/metrics", serve_metrics)
    runner = web.AppRunner(metrics_app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        log.info("metrics on http://%s:%d/metrics", host, port)
        yield
    finally:
        await runner.cleanup()
